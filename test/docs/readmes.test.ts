import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { flag, type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Block,
  blocksOf,
  capturedEvents,
  flagKeys,
  GITHUB,
  imports,
  installedBy,
  links,
  packageOf,
  ROOT,
  readmes,
  routes,
} from './blocks.ts';

const files = readmes();
const runnable = (b: Block) => b.kind !== 'install' && b.kind !== 'fragment';
const allBlocks = files.flatMap(blocksOf);
const lockfile = readFileSync(join(ROOT, 'pnpm-lock.yaml'), 'utf8');
const preload = pathToFileURL(join(import.meta.dirname, 'listen-on-free-port.mjs')).href;
const vitestBin = join(ROOT, 'node_modules/vitest/vitest.mjs');

/** The frameworks the adapters peer on: a reader of an app's fragment has them. */
const frameworks = new Set(
  readdirSync(join(ROOT, 'packages'))
    .filter((folder) => !['core', 'testing', 'conformance'].includes(folder))
    .flatMap((folder) => {
      const manifest = join(ROOT, 'packages', folder, 'package.json');
      if (!existsSync(manifest)) return [];
      return Object.keys(JSON.parse(readFileSync(manifest, 'utf8')).peerDependencies ?? {});
    }),
);

let sandbox: string;
/** Packages a runnable block imports that no workspace member has: that block fails. */
const missing = new Set<string>();

/** Where a package of the workspace is installed, for the sandbox's node_modules. */
function locate(name: string): string | undefined {
  if (name.startsWith('@posthog-kit/')) {
    const dir = join(ROOT, 'packages', name.slice('@posthog-kit/'.length));
    return existsSync(join(dir, 'package.json')) ? dir : undefined;
  }
  const owners = [
    ROOT,
    ...['packages', 'examples', 'smoke'].flatMap((folder) =>
      readdirSync(join(ROOT, folder)).map((name) => join(ROOT, folder, name)),
    ),
    ...['browser', 'bench', 'reliability'].map((folder) => join(ROOT, folder)),
  ];
  return owners.map((dir) => join(dir, 'node_modules', name)).find((dir) => existsSync(dir));
}

beforeAll(() => {
  // Outside the workspace, with only what the blocks import: a reader's fresh project.
  sandbox = mkdtempSync(join(tmpdir(), 'posthog-kit-docs-'));
  writeFileSync(join(sandbox, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  const needed = new Set(['vitest']);
  for (const block of allBlocks.filter(runnable)) {
    for (const specifier of imports(block.code)) {
      const name = packageOf(specifier);
      if (name) needed.add(name);
    }
  }
  for (const name of needed) {
    const target = locate(name);
    if (!target) {
      missing.add(name);
      continue;
    }
    const link = join(sandbox, 'node_modules', name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(target, link, 'dir');
  }
});
afterAll(() => {
  if (sandbox) rmSync(sandbox, { recursive: true, force: true });
});

/** The environment of a reader's shell: no test runner, no package manager, no other PostHog. */
function readerEnv(emulator: PostHogEmulator, extra: Record<string, string> = {}) {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^(POSTHOG_|VITEST|npm_|PNPM_|NODE_OPTIONS$|NODE_ENV$)/.test(key)) {
      continue;
    }
    env[key] = value;
  }
  return {
    ...env,
    PATH: `${dirname(process.execPath)}:${env.PATH ?? ''}`,
    POSTHOG_PROJECT_API_KEY: emulator.projectApiKey,
    POSTHOG_HOST: emulator.url,
    ...extra,
  };
}

interface Run {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(command: string, args: string[], cwd: string, env: Record<string, string>): Run {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
}

/** Waits for the process to end; kills it and says so after `ms`. */
async function finish(run: Run, ms: number, what: string) {
  const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms));
  const result = await Promise.race([run.exited, timer]);
  if (result === 'timeout') {
    run.child.kill('SIGKILL');
    throw new Error(`${what} did not end within ${ms} ms; output:\n${run.output()}`);
  }
  return result;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function request(base: string, route: { method: string; path: string }) {
  const response = await fetch(`${base}${route.path}`, {
    method: route.method,
    headers: { 'content-type': 'application/json', 'x-posthog-distinct-id': 'doc-reader' },
    ...(route.method === 'GET' ? {} : { body: JSON.stringify({ plan: 'pro' }) }),
  });
  await response.arrayBuffer();
  return `${route.method} ${route.path} -> ${response.status}`;
}

/** Runs one block as its kind says; resolves with what it printed and what it answered. */
async function run(block: Block, emulator: PostHogEmulator, dir: string) {
  const node = process.execPath;
  const file = join(dir, block.kind === 'vitest' ? 'block.test.ts' : `block.${block.lang}`);
  if (block.lang !== 'sh') writeFileSync(file, block.code);
  const env = readerEnv(emulator);
  const answers: string[] = [];

  if (block.kind === 'shell') {
    const shell = start(
      'bash',
      ['-eo', 'pipefail', '-c', block.code],
      dirname(join(ROOT, block.readme)),
      env,
    );
    const { code } = await finish(shell, 60_000, 'the commands');
    expect(code, shell.output()).toBe(0);
    return { output: shell.output(), answers };
  }
  if (block.kind === 'script' || block.kind === 'vitest') {
    const args = block.kind === 'vitest' ? [vitestBin, 'run', '--root', dir] : [file];
    const script = start(node, args, dir, env);
    const { code } = await finish(script, 60_000, 'the block');
    expect(code, script.output()).toBe(0);
    return { output: script.output(), answers };
  }
  if (block.kind === 'worker') {
    const runner = join(dir, 'run-worker.ts');
    writeFileSync(
      runner,
      [
        `import worker from './block.ts';`,
        'const waits = [];',
        'const ctx = { waitUntil: (p) => waits.push(p), passThroughOnException() {}, props: {} };',
        `const env = { POSTHOG_PROJECT_API_KEY: process.env.POSTHOG_PROJECT_API_KEY, POSTHOG_HOST: process.env.POSTHOG_HOST };`,
        `for (const { method, path } of ${JSON.stringify(routes(block.code))}) {`,
        `  const headers = { 'x-posthog-distinct-id': 'doc-reader' };`,
        `  const response = await worker.fetch(new Request('http://worker.local' + path, { method, headers }), env, ctx);`,
        "  console.log(method + ' ' + path + ' -> ' + response.status);",
        '}',
        'await Promise.all(waits);',
      ].join('\n'),
    );
    const worker = start(node, [runner], dir, env);
    const { code } = await finish(worker, 30_000, 'the Worker');
    expect(code, worker.output()).toBe(0);
    return {
      output: worker.output(),
      answers: worker.output().match(/^\w+ \/\S* -> \d+$/gm) ?? [],
    };
  }

  // A server: on a free port, its routes requested, then SIGTERM.
  const listenFile = join(dir, 'listening.json');
  const server = start(node, ['--import', preload, file], dir, {
    ...env,
    DOCTEST_LISTEN_FILE: listenFile,
  });
  try {
    const deadline = Date.now() + 15_000;
    while (!existsSync(listenFile)) {
      if (server.child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`the server never listened; output:\n${server.output()}`);
      }
      await sleep(25);
    }
    const address = JSON.parse(readFileSync(listenFile, 'utf8')) as {
      address: string;
      port: number;
    };
    const host = ['::', '0.0.0.0'].includes(address.address)
      ? '127.0.0.1'
      : address.address.includes(':')
        ? `[${address.address}]`
        : address.address;
    for (const route of routes(block.code)) {
      answers.push(await request(`http://${host}:${address.port}`, route));
    }
    // Stopped as a deploy stops it: what it captured must still arrive (checked below).
    server.child.kill('SIGTERM');
    await finish(server, 5000, 'the server, after SIGTERM,');
    return { output: server.output(), answers };
  } finally {
    server.child.kill('SIGKILL');
  }
}

describe.each(files)('%s', (readme) => {
  const blocks = blocksOf(readme);

  it('installs every package its blocks import', () => {
    const installed = installedBy(readme);
    const uninstalled = blocks.flatMap((b) =>
      imports(b.code)
        .map(packageOf)
        .filter((name) => name !== undefined && !installed.has(name))
        // A fragment inside an app of some framework may use that framework's own modules.
        .filter((name) => b.kind !== 'fragment' || !frameworks.has(name as string))
        .map((name) => `${name} (line ${b.line})`),
    );
    expect(uninstalled).toEqual([]);
  });

  it('installs only packages this workspace has', () => {
    const unknown = [...installedBy(readme)].filter((name) => {
      if (name.startsWith('@posthog-kit/')) {
        const manifest = join(ROOT, 'packages', name.slice('@posthog-kit/'.length), 'package.json');
        return !existsSync(manifest) || JSON.parse(readFileSync(manifest, 'utf8')).name !== name;
      }
      const escaped = name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      return !new RegExp(`^\\s+'?${escaped}@`, 'm').test(lockfile);
    });
    expect(unknown).toEqual([]);
  });

  it('says why each fragment is one', () => {
    const unexplained = blocks.filter((b) => b.kind === 'fragment' && !b.fragment);
    expect(unexplained.map((b) => `${b.readme}:${b.line}`)).toEqual([]);
  });

  if (readme.startsWith('packages/')) {
    it('links absolutely (the npm page cannot follow ../), to paths that exist', () => {
      const bad = links(readme).filter((target) => {
        if (target.startsWith('#') || target.startsWith('mailto:')) return false;
        const ours = new RegExp(`^${GITHUB}/(?:tree|blob)/main/([^#?]+)`).exec(target);
        if (ours) return !existsSync(join(ROOT, ours[1] as string));
        return !/^https?:\/\//.test(target);
      });
      expect(bad).toEqual([]);
    });
  }
});

// One suite, so that the blocks of every README run side by side.
describe('runnable blocks', () => {
  for (const block of allBlocks.filter(runnable)) {
    const name = `${block.readme}:${block.line} (${block.kind})`;
    it.concurrent(name, { timeout: 90_000 }, async () => {
      const absent = imports(block.code)
        .map(packageOf)
        .filter((n) => n !== undefined && missing.has(n));
      expect(absent, 'imported, but no workspace package depends on it').toEqual([]);
      const emulator = await startEmulator({ flags: flagKeys(block.code).map((key) => flag(key)) });
      const dir = mkdtempSync(join(sandbox, 'block-'));
      try {
        const { output, answers } = await run(block, emulator, dir);
        const context = `${name}\n${answers.join('\n')}\n${output}`;
        for (const answer of answers) expect(answer, context).not.toMatch(/-> 5\d\d$/);
        expect(output, context).not.toMatch(/\[posthog-kit\]/);
        expect(output, context).not.toMatch(/\[PostHog\].*deprecated/);
        // Its own emulator (startEmulator in the block) gets its events, not ours.
        if (
          block.kind !== 'vitest' &&
          block.kind !== 'shell' &&
          !/\bstartEmulator\(/.test(block.code)
        ) {
          for (const event of capturedEvents(block.code)) {
            await emulator
              .waitForEvents({ event }, 1000)
              .catch((error: Error) => expect.fail(`${error.message}\n${context}`));
          }
        }
      } finally {
        await emulator.close();
      }
    });
  }
});
