import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  flag,
  type PostHogEmulator,
  type RecordedEvent,
  startEmulator,
} from '@posthog-kit/testing';
import { rolldown } from 'rolldown';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Binary, findBinary } from './binaries.ts';
import { assertBuilt, LAZY_OPTIONAL } from './built.ts';

// The smoke app (src/hono-app.ts, src/h3-app.ts) on Bun and Deno, and as a Worker on workerd,
// each talking to the emulator over loopback: a capture with the request's ids, a flag, an error.

const root = fileURLToPath(new URL('..', import.meta.url));
const runtimes = {
  bun: findBinary('bun'),
  deno: findBinary('deno'),
  workerd: findBinary('workerd'),
};
const running: ChildProcess[] = [];
let emulator: PostHogEmulator;

beforeAll(async () => {
  assertBuilt();
  emulator = await startEmulator({ flags: [flag('smoke-flag', { rollout: 100 })] });
});
afterEach(() => {
  for (const child of running.splice(0)) child.kill('SIGKILL');
});
afterAll(() => emulator?.close());

/** The runtime's title, with the reason when it cannot run here (the case is then skipped). */
function title(name: string, binary: Binary, what: string): string {
  if ('skip' in binary) {
    console.warn(`[smoke-runtimes] ${name} skipped: ${binary.skip}`);
    return `${name}: ${what} (skipped: ${binary.skip})`;
  }
  return `${name} (${binary.version}): ${what}`;
}

/** The environment of a child: no POSTHOG_* of ours leaks in, the emulator's go in. */
function childEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('POSTHOG_')) env[k] = v;
  }
  return {
    ...env,
    NO_COLOR: '1',
    POSTHOG_HOST: emulator.url,
    POSTHOG_PROJECT_API_KEY: emulator.projectApiKey,
    ...extra,
  };
}

function start(command: string, args: string[], cwd: string, env: Record<string, string>) {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(child);
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, output: () => output, exited };
}

/** A running smoke app: its URL, and what its process printed (for failures). */
interface Served {
  url: string;
  output(): string;
}

/** Runs src/serve.ts on Bun or Deno; resolves with the URL it prints. */
async function serveOn(binary: string, args: string[], framework: string): Promise<Served> {
  const app = start(
    binary,
    [...args, 'src/serve.ts'],
    root,
    childEnv({ SMOKE_FRAMEWORK: framework }),
  );
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const line = app
      .output()
      .split('\n')
      .find((l) => l.startsWith('{"url"'));
    if (line) return { url: (JSON.parse(line) as { url: string }).url, output: app.output };
    const code = await Promise.race([app.exited, new Promise((r) => setTimeout(r, 50, 'wait'))]);
    if (code !== 'wait') throw new Error(`exited (${code}) before listening:\n${app.output()}`);
  }
  throw new Error(`did not start within 20 s:\n${app.output()}`);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let workerBundle: string | undefined;

/** The Worker entry bundled as wrangler would: one ES module, Workers' export conditions. */
async function bundleWorker(): Promise<string> {
  if (workerBundle) return workerBundle;
  const bundle = await rolldown({
    input: join(root, 'src/worker.ts'),
    platform: 'neutral',
    external: [/^node:/, ...LAZY_OPTIONAL],
    resolve: {
      conditionNames: ['workerd', 'worker', 'browser', 'import', 'default'],
      mainFields: ['module', 'main'],
    },
  });
  const [chunk] = (await bundle.generate({ format: 'esm', codeSplitting: false })).output;
  await bundle.close();
  workerBundle = chunk.code;
  return workerBundle;
}

/** Runs the Worker under workerd with the given compatibility flags; resolves with its URL. */
async function serveOnWorkerd(binary: string, framework: string, flags: string[]): Promise<Served> {
  const dir = mkdtempSync(join(tmpdir(), 'posthog-kit-workerd-'));
  const port = await freePort();
  writeFileSync(join(dir, 'worker.mjs'), await bundleWorker());
  const text = (name: string, value: string) => `(name = "${name}", text = "${value}")`;
  writeFileSync(
    join(dir, 'config.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    # The emulator is on loopback, which Workers' default outbound refuses.
    (name = "loopback", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [ (name = "worker.mjs", esModule = embed "worker.mjs") ],
  compatibilityDate = "2025-09-01",
  compatibilityFlags = [${flags.map((f) => `"${f}"`).join(', ')}],
  globalOutbound = "loopback",
  bindings = [
    ${text('POSTHOG_PROJECT_API_KEY', emulator.projectApiKey)},
    ${text('POSTHOG_HOST', emulator.url)},
    ${text('SMOKE_FRAMEWORK', framework)},
    ${text('SMOKE_CONTEXT', flags.includes('nodejs_als') ? 'node:async_hooks' : 'core')},
  ],
);
`,
  );
  const app = start(binary, ['serve', 'config.capnp'], dir, childEnv({}));
  app.exited.then(() => rmSync(dir, { recursive: true, force: true }));
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      }).on('error', () => resolve(false));
    });
    if (open) return { url: `http://127.0.0.1:${port}`, output: app.output };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`workerd did not listen within 20 s:\n${app.output()}`);
}

/** Drives the smoke app and checks what PostHog received; a failure shows what the app printed. */
async function smoke(app: Served, options: { id: string; asyncContext: boolean; ip: boolean }) {
  try {
    return await drive(app.url, options);
  } catch (error) {
    if (error instanceof Error) error.message += `\n--- the app printed:\n${app.output()}`;
    throw error;
  }
}

async function drive(url: string, options: { id: string; asyncContext: boolean; ip: boolean }) {
  emulator.reset();
  const { id } = options;
  const headers = { 'x-posthog-distinct-id': id, 'x-posthog-session-id': `${id}-session` };
  const captured = await fetch(`${url}/capture`, { headers });
  expect(captured.status).toBe(200);
  const { runtime } = (await captured.json()) as { runtime: string };
  expect(await (await fetch(`${url}/flag`, { headers })).json()).toEqual({ flag: true });
  expect((await fetch(`${url}/boom`, { headers })).status).toBe(500);

  const count = options.asyncContext ? 4 : 3;
  const events = await emulator.waitForEvents(
    { count, predicate: (e) => e.distinctId === id },
    15_000,
  );
  const named = (name: string) => events.find((e) => e.event === name) as RecordedEvent;
  const request = { $session_id: `${id}-session`, $request_method: 'GET' };
  expect(named('smoke_slot').properties).toMatchObject({
    ...request,
    $request_path: '/capture',
    runtime,
  });
  expect(named('$feature_flag_called').properties).toMatchObject({ $feature_flag: 'smoke-flag' });
  expect(named('$exception').properties).toMatchObject({
    ...request,
    $request_path: '/boom',
    $response_status_code: 500,
  });
  if (options.ip) expect(named('smoke_slot').properties.$ip).toBe('127.0.0.1');
  if (options.asyncContext) {
    // Module-level capture after an await found the request: AsyncLocalStorage works here.
    expect(named('smoke_module').properties).toMatchObject({
      ...request,
      $request_path: '/capture',
    });
  } else {
    // Without it, the module-level call after an await has no request: it goes out without
    // the request's ids and tags (the slot's event above has them).
    const [orphan] = await emulator.waitForEvents({ event: 'smoke_module' }, 15_000);
    expect(orphan?.distinctId).not.toBe(id);
    expect(orphan?.properties.$request_path).toBeUndefined();
  }
  return runtime;
}

describe('beyond Node', { timeout: 30_000 }, () => {
  for (const framework of ['hono', 'h3']) {
    const { bun, deno } = runtimes;
    it.skipIf('skip' in bun)(title('Bun', bun, `${framework} smoke app`), async () => {
      const app = await serveOn((bun as { path: string }).path, [], framework);
      expect(await smoke(app, { id: `bun-${framework}`, asyncContext: true, ip: true })).toMatch(
        /^bun /,
      );
    });

    it.skipIf('skip' in deno)(title('Deno', deno, `${framework} smoke app`), async () => {
      const permissions = ['--allow-net', '--allow-env', '--allow-read', '--allow-sys'];
      const app = await serveOn(
        (deno as { path: string }).path,
        ['run', '--quiet', '--no-lock', ...permissions],
        framework,
      );
      expect(await smoke(app, { id: `deno-${framework}`, asyncContext: true, ip: true })).toMatch(
        /^deno /,
      );
    });
  }

  const { workerd } = runtimes;
  const workerCases: Array<[string, string[], string]> = [
    ['hono', ['nodejs_compat'], 'nodejs_compat: core finds AsyncLocalStorage itself'],
    ['h3', ['nodejs_compat'], 'nodejs_compat: core finds AsyncLocalStorage itself'],
    ['hono', ['nodejs_als'], 'nodejs_als: AsyncLocalStorage passed as contextStorage'],
    ['hono', [], 'no compatibility flags: no AsyncLocalStorage'],
  ];
  for (const [framework, flags, context] of workerCases) {
    const als = flags.length > 0;
    const what = `${framework} Worker, ${context}; events only through ctx.waitUntil`;
    it.skipIf('skip' in workerd)(title('workerd', workerd, what), async () => {
      const app = await serveOnWorkerd((workerd as { path: string }).path, framework, flags);
      const id = `workerd-${framework}-${flags.join('-') || 'no-flags'}`;
      expect(await smoke(app, { id, asyncContext: als, ip: false })).toMatch(/Cloudflare-Workers/);
    });
  }
});
