// Capture paths that need a process of their own: nothing loaded when code variables are
// off, and process autocapture (one event per error, the crash Node would have had).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type PostHogEmulator, type RecordedEvent, startEmulator } from '@posthog-kit/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isInAppFile } from '../src/index.ts';

const child = fileURLToPath(new URL('./fixtures/exceptions-child.ts', import.meta.url));

let emulator: PostHogEmulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(() => emulator.close());
beforeEach(() => emulator.reset());

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the fixture; with a `path`, requests it once the app listens, with
 * `x-posthog-distinct-id: visitor-1`. Bounded: killed after `timeoutMs`.
 */
function run(mode: string, options: { path?: string; enabled?: boolean } = {}): Promise<Run> {
  const apiKey = options.enabled === false ? '' : emulator.projectApiKey;
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child, mode, emulator.url, apiKey], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${mode}: still running after 15 s\n${stdout}\n${stderr}`));
    }, 15_000);
    proc.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
      const ready = /ready (\S+)/.exec(stdout);
      if (ready && options.path && !stdout.includes('requested')) {
        stdout += '\nrequested\n';
        fetch(`${ready[1]}${options.path}`, {
          headers: { 'x-posthog-distinct-id': 'visitor-1' },
        }).catch(() => {});
      }
    });
    proc.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * What Node prints from the error on: message, stack, properties, Node's version line.
 * Before it Node shows the source line of the throw, which it can no longer find once
 * the error's `stack` has been read (posthog-node reads it to build the event).
 */
const fromMessage = (stderr: string, message: string) => {
  const at = stderr.indexOf(message);
  expect(at).toBeGreaterThanOrEqual(0);
  return stderr.slice(at);
};

const exceptions = () => emulator.events.filter((e) => e.event === '$exception');
interface ExceptionEntry {
  value: string;
  mechanism: { type: string; handled: boolean };
  stacktrace: { frames: Array<{ function: string; code_variables?: Record<string, unknown> }> };
}
const first = (e: RecordedEvent | undefined) =>
  (e?.properties.$exception_list as ExceptionEntry[] | undefined)?.[0];

describe('code variables off', () => {
  it('is the default: neither the code-variables module nor node:inspector is loaded', async () => {
    const off = await run('loaded-off');
    expect(off.code).toBe(0);
    expect(JSON.parse(off.stdout)).toEqual({ codeVariablesModule: false, inspector: false });
    // A context asking for them does not load anything when the setting is off.
    const context = await run('loaded-context');
    expect(JSON.parse(context.stdout)).toEqual({ codeVariablesModule: false, inspector: false });
    // The check itself: with the setting on, both are loaded.
    const on = await run('loaded-on');
    expect(JSON.parse(on.stdout)).toEqual({ codeVariablesModule: true, inspector: true });
  }, 30_000);
});

describe('process autocapture', () => {
  it('sends an error seen by a manual capture, the middleware and autocapture once, then crashes', async () => {
    const result = await run('once', { path: '/once' });
    // Node's own ending for an uncaught exception: exit code 1, the error on stderr.
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Error: seen by all three');
    const events = exceptions();
    expect(events).toHaveLength(1);
    expect(events[0]?.properties.via).toBe('manual');
    expect(first(events[0])?.mechanism).toMatchObject({ type: 'generic', handled: true });
  }, 20_000);

  it('an unhandled rejection: captured with its request context and variables, sent, then the same crash as without the kit', async () => {
    const withKit = await run('rejection', { path: '/rejection' });
    const events = exceptions();
    expect(events).toHaveLength(1);
    const [event] = events;
    expect(event?.distinctId).toBe('visitor-1');
    expect(event?.properties.$request_path).toBe('/rejection');
    const exception = first(event);
    expect(exception?.value).toBe('order ord-7 failed after 3 attempts');
    expect(exception?.mechanism).toMatchObject({ type: 'onunhandledrejection', handled: false });
    const failLater = exception?.stacktrace.frames.find((f) => f.function === 'failLater');
    expect(failLater?.code_variables).toMatchObject({ orderId: 'ord-7', attempt: 3 });

    const withoutKit = await run('rejection', { path: '/rejection', enabled: false });
    expect(withKit.code).toBe(1);
    expect(withoutKit.code).toBe(1);
    expect(fromMessage(withKit.stderr, 'Error: order ord-7')).toBe(
      fromMessage(withoutKit.stderr, 'Error: order ord-7'),
    );
  }, 30_000);

  it('an uncaught exception: captured with its context, sent, then Node ends the process as it would have', async () => {
    const withKit = await run('uncaught', { path: '/uncaught' });
    const [event] = exceptions();
    expect(event?.distinctId).toBe('visitor-1');
    expect(first(event)?.value).toBe('timer for cart-9 blew up');
    expect(first(event)?.mechanism).toMatchObject({ type: 'onuncaughtexception', handled: false });

    const withoutKit = await run('uncaught', { path: '/uncaught', enabled: false });
    expect(withKit.code).toBe(1);
    expect(withoutKit.code).toBe(1);
    expect(fromMessage(withKit.stderr, 'Error: timer for cart-9')).toBe(
      fromMessage(withoutKit.stderr, 'Error: timer for cart-9'),
    );
  }, 30_000);
});

describe('in-app frames', () => {
  it('default: not under node_modules and not Node’s own', () => {
    expect(isInAppFile('src/app.js')).toBe(true);
    expect(isInAppFile('/srv/app/src/app.js')).toBe(true);
    expect(isInAppFile('file:///srv/app/src/app.mjs')).toBe(true);
    expect(isInAppFile('node_modules/express/lib/router.js')).toBe(false);
    expect(isInAppFile('/srv/app/node_modules/.pnpm/x@1/node_modules/x/i.js')).toBe(false);
    expect(isInAppFile('C:\\app\\node_modules\\x\\i.js')).toBe(false);
    expect(isInAppFile('node:internal/timers')).toBe(false);
    expect(isInAppFile('native')).toBe(false);
    expect(isInAppFile(undefined)).toBe(false);
  });

  it('inAppModules: path prefixes (relative to the working directory or absolute) and packages', () => {
    const modules = ['src/', '@acme/', '/opt/shared/'];
    const cwd = '/srv/app';
    expect(isInAppFile('src/routes/a.js', modules, cwd)).toBe(true);
    expect(isInAppFile('/srv/app/src/routes/a.js', modules, cwd)).toBe(true);
    expect(isInAppFile('file:///srv/app/src/a.mjs', modules, cwd)).toBe(true);
    expect(isInAppFile('scripts/seed.js', modules, cwd)).toBe(false);
    expect(isInAppFile('node_modules/@acme/billing/index.js', modules, cwd)).toBe(true);
    expect(isInAppFile('/srv/app/node_modules/@acme/billing/index.js', modules, cwd)).toBe(true);
    expect(isInAppFile('node_modules/express/index.js', modules, cwd)).toBe(false);
    expect(isInAppFile('/opt/shared/lib.js', modules, cwd)).toBe(true);
    expect(isInAppFile('node:internal/x', ['node:'], cwd)).toBe(false);
  });
});
