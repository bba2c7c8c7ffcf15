// How a process ends with the kit's autocapture, against the same process without the
// kit (issue 13, items 15 and 19): each case runs the fixture twice in a child process,
// once with a key (the kit captures, sends to the emulator, hands the error back to
// Node) and once without (the kit is disabled and installs nothing), and compares.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const child = fileURLToPath(new URL('./fixtures/crash-child.ts', import.meta.url));

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

function run(mode: string, options: { kit: boolean; nodeArgs?: string[] }): Promise<Run> {
  const apiKey = options.kit ? emulator.projectApiKey : '';
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [...(options.nodeArgs ?? []), child, mode, emulator.url, apiKey],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } },
    );
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${mode}: still running after 15 s\n${stdout}\n${stderr}`));
    }, 15_000);
    proc.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
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

const exceptionValues = () =>
  emulator.events
    .filter((e) => e.event === '$exception')
    .map((e) => (e.properties.$exception_list as Array<{ value: string }>)[0]?.value);

describe("the crash output is Node's own", () => {
  it('an uncaught exception: the same stderr, byte for byte, the source excerpt included', async () => {
    const withKit = await run('throw', { kit: true });
    expect(exceptionValues()).toEqual(['card c-7 declined after 2 attempts']);
    const withoutKit = await run('throw', { kit: false });
    expect(withKit.code).toBe(1);
    expect(withoutKit.code).toBe(1);
    // Node's excerpt: the app's throw statement, the caret under `throw`.
    expect(withoutKit.stderr).toMatch(
      /crash-child\.ts:\d+\n {2}if \(cents > 100\) throw new Error\(.*\n {19}\^\n\nError: card c-7/,
    );
    expect(withKit.stderr).toBe(withoutKit.stderr);
    expect(withKit.stdout).toBe('exit listener 1\n');
    expect(withKit.stdout).toBe(withoutKit.stdout);
  }, 40_000);

  it('an unhandled rejection: the same stderr, byte for byte', async () => {
    const withKit = await run('reject', { kit: true });
    expect(exceptionValues()).toEqual(['refund of o-9 failed: expired']);
    const withoutKit = await run('reject', { kit: false });
    expect(withKit.code).toBe(1);
    expect(withoutKit.code).toBe(1);
    expect(withoutKit.stderr).toMatch(/crash-child\.ts:\d+\n {2}return Promise\.reject\(new Error/);
    expect(withKit.stderr).toBe(withoutKit.stderr);
  }, 40_000);
});

describe('--unhandled-rejections=strict', () => {
  const strict = ['--unhandled-rejections=strict'];

  it("with the app's own unhandledRejection listener: the listener never runs and the process exits 1, as without the kit", async () => {
    const withKit = await run('listener', { kit: true, nodeArgs: strict });
    expect(exceptionValues()).toEqual(['refund of o-9 failed: expired']);
    const withoutKit = await run('listener', { kit: false, nodeArgs: strict });
    expect(withoutKit.code).toBe(1);
    expect(withoutKit.stdout).not.toContain('app listener');
    expect(withKit.code).toBe(1);
    expect(withKit.stdout).toBe(withoutKit.stdout);
    expect(withKit.stderr).toBe(withoutKit.stderr);
  }, 40_000);

  it('without a listener: no "unhandled rejection" warning of Node on top of the crash', async () => {
    const withKit = await run('reject', { kit: true, nodeArgs: strict });
    const withoutKit = await run('reject', { kit: false, nodeArgs: strict });
    expect(withKit.code).toBe(1);
    expect(withKit.stderr).not.toContain('UnhandledPromiseRejectionWarning');
    expect(withKit.stderr).toBe(withoutKit.stderr);
  }, 40_000);
});
