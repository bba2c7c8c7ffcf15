import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APPS, typecheckFile } from './apps.ts';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '../../..');
// The README's test command finds the machine's Node 20 and sets NODE20_BIN.
const node = process.env.NODE20_BIN || process.execPath;
const MANAGERS = ['npm', 'pnpm'] as const;
type Manager = (typeof MANAGERS)[number];
/**
 * The previous Nest major, which the peer ranges accept: its own project (npm), the Nest app
 * alone, Nest 11 from the registry. The error path reaches into @nestjs/core by a file path.
 */
const NEST_11 = {
  label: 'npm, Nest 11',
  versions: {
    '@nestjs/common': '^11.0.0',
    '@nestjs/core': '^11.0.0',
    '@nestjs/platform-express': '^11.0.0',
  } as Record<string, string>,
};
type Project = Manager | typeof NEST_11.label;

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  license?: string;
  keywords?: string[];
  homepage?: string;
  bugs?: string | { url: string };
  repository?: { type: string; url: string; directory: string };
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

interface Packed {
  folder: string;
  manifest: Manifest;
  tarball: string;
  files: string[];
}

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

/** A user's shell: no test runner, no workspace package manager settings, no PostHog. */
function userEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    if (/^(npm_|PNPM_|pnpm_|VITEST|POSTHOG_|NODE_OPTIONS$|NODE_ENV$|INIT_CWD$)/.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

const published = readdirSync(join(ROOT, 'packages'))
  .filter((folder) => existsSync(join(ROOT, 'packages', folder, 'package.json')))
  .filter((folder) => !readJson<Manifest>(join(ROOT, 'packages', folder, 'package.json')).private)
  .sort();

let work: string;
const packed = new Map<string, Packed>();
let ready: typeof APPS = [];
const timings: Record<string, number> = {};
const projects = new Map<Project, { dir: string; emulator: Emulator }>();

interface Emulator {
  url: string;
  child: ChildProcess;
  stdout: () => string;
}

/** The emulator CLI of the packed @posthog-kit/testing, on the Node under test. */
async function startEmulator(dir: string): Promise<Emulator> {
  const cli = join(dir, 'node_modules/@posthog-kit/testing/dist/cli.mjs');
  const flags = join(dir, 'flags.json');
  writeFileSync(flags, JSON.stringify([{ key: 'new-dashboard' }]));
  const child = spawn(node, [cli, '--json', '--quiet', '--flags', flags], {
    cwd: dir,
    env: userEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const deadline = Date.now() + 15_000;
  let url: string | undefined;
  while (!url) {
    url = /^PostHog emulator listening on (\S+)$/m.exec(stderr)?.[1];
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`the packed emulator CLI did not start:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { url, child, stdout: () => stdout };
}

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await fn();
  } finally {
    timings[label] = Date.now() - started;
  }
}

/**
 * A fresh project outside the workspace: the adapters that exist, their frameworks (at the
 * adapters' versions unless `versions` says otherwise), ours as tarballs.
 */
function writeProject(
  manager: Manager,
  folder: string,
  apps: typeof APPS,
  versions: Record<string, string> = {},
): string {
  const dir = join(work, folder);
  mkdirSync(dir);
  const tarball = (folder: string) => `file:${packed.get(folder)?.tarball}`;
  const versionOf = (adapter: string, name: string) => {
    const manifest = readJson<Manifest>(join(ROOT, 'packages', adapter, 'package.json'));
    const version = manifest.devDependencies?.[name] ?? manifest.peerDependencies?.[name];
    if (!version) throw new Error(`${adapter}: no version of ${name} in its package.json`);
    return version;
  };
  const dependencies: Record<string, string> = {
    '@posthog-kit/testing': tarball('testing'),
    '@types/node': readJson<Manifest>(join(ROOT, 'node_modules/@types/node/package.json')).version,
  };
  for (const app of apps) {
    dependencies[`@posthog-kit/${app.name}`] = tarball(app.name);
    for (const name of [...app.frameworks, ...app.types]) {
      dependencies[name] = versions[name] ?? versionOf(app.name, name);
    }
  }
  // The adapters' own dependency on core must come from its tarball too, never the registry.
  const ours = { '@posthog-kit/core': tarball('core') };
  const manifest = {
    name: `posthog-kit-packed-${manager}`,
    private: true,
    type: 'module',
    dependencies,
    ...(manager === 'npm' && { overrides: ours }),
  };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  if (manager === 'pnpm') {
    // pnpm reads its settings from pnpm-workspace.yaml (no longer from package.json).
    const lines = Object.entries(ours).map(([name, spec]) => `  '${name}': '${spec}'`);
    writeFileSync(join(dir, 'pnpm-workspace.yaml'), `overrides:\n${lines.join('\n')}\n`);
  }
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        strict: true,
        noEmit: true,
        types: ['node'],
        skipLibCheck: false,
      },
      files: ['check.ts'],
    }),
  );
  writeFileSync(join(dir, 'check.ts'), typecheckFile(apps.map((a) => a.name)));
  for (const app of apps) {
    writeFileSync(join(dir, `${app.name}.mjs`), app.esm(`${folder}-${app.name}-esm`));
    writeFileSync(join(dir, `${app.name}.cjs`), app.cjs(`${folder}-${app.name}-cjs`));
  }
  return dir;
}

/**
 * Installs, killing the whole process group when it takes too long: a package manager
 * stalled on the network leaves children holding its pipes, which a plain timeout waits on.
 */
function install(manager: Manager, dir: string): Promise<void> {
  const args =
    manager === 'npm'
      ? ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error']
      : ['install', '--no-frozen-lockfile', '--prefer-offline', '--reporter=append-only'];
  const limitMs = 150_000;
  return new Promise((resolve, reject) => {
    const child = spawn(manager, args, { cwd: dir, env: userEnv(), detached: true });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const timer = setTimeout(() => {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
      reject(
        new Error(`${manager} install did not finish in ${limitMs / 1000} s in ${dir}:\n${output}`),
      );
    }, limitMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${manager} install failed (exit ${code}) in ${dir}:\n${output}`));
    });
  });
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'posthog-kit-packed-'));
  const tarballs = join(work, 'tarballs');
  mkdirSync(tarballs);
  await timed('pack', () =>
    Promise.all(
      published.map(async (folder) => {
        const cwd = join(ROOT, 'packages', folder);
        if (!existsSync(join(cwd, 'dist'))) {
          throw new Error(`packages/${folder}/dist is missing: run pnpm build first`);
        }
        const out = join(tarballs, folder);
        mkdirSync(out);
        await exec('pnpm', ['pack', '--pack-destination', out], { cwd, env: userEnv() });
        const [file] = readdirSync(out);
        const tarball = join(out, file as string);
        const { stdout: list } = await exec('tar', ['-tzf', tarball]);
        const { stdout: manifest } = await exec('tar', ['-xzOf', tarball, 'package/package.json']);
        packed.set(folder, {
          folder,
          tarball,
          manifest: JSON.parse(manifest) as Manifest,
          files: list.split('\n').filter(Boolean),
        });
      }),
    ),
  );
  // fastify and nestjs were written after the others: each is checked once its entry exists.
  ready = [];
  for (const app of APPS) {
    const pack = packed.get(app.name);
    if (!pack) continue;
    const { stdout: types } = await exec('tar', [
      '-xzOf',
      pack.tarball,
      'package/dist/index.d.mts',
    ]);
    if (new RegExp(`\\b${app.entry}\\b`).test(types)) ready.push(app);
  }
  const nest = ready.filter((app) => app.name === 'nestjs');
  const setups: Array<[Project, Manager, string, typeof APPS, Record<string, string>?]> = [
    ...MANAGERS.map((m): [Project, Manager, string, typeof APPS] => [m, m, m, ready]),
    ...(nest.length ? [[NEST_11.label, 'npm', 'nest11', nest, NEST_11.versions] as const] : []),
  ];
  await timed('install', () =>
    Promise.all(
      setups.map(async ([label, manager, folder, apps, versions]) => {
        const dir = writeProject(manager, folder, apps, versions);
        await timed(`install (${label})`, () => install(manager, dir));
        projects.set(label, { dir, emulator: await startEmulator(dir) });
      }),
    ),
  );
}, 240_000);

afterAll(() => {
  for (const { emulator } of projects.values()) emulator.child.kill('SIGKILL');
  if (work) rmSync(work, { recursive: true, force: true });
  const node20 = process.env.NODE20_BIN ? 'Node 20' : `${process.version} (no NODE20_BIN)`;
  const figures = Object.entries(timings).map(
    ([label, ms]) => `${label} ${(ms / 1000).toFixed(1)} s`,
  );
  console.log(
    `[smoke-packed] ${published.length} tarballs; adapters run: ${ready.map((a) => a.name).join(', ')}; on ${node}; ${node20}; ${figures.join(', ')}`,
  );
});

describe('the tarballs', () => {
  const license = readFileSync(join(ROOT, 'LICENSE'), 'utf8');

  it.each(published)(
    '%s: LICENSE, registry metadata, no source maps, no workspace ranges',
    async (folder) => {
      const pack = packed.get(folder) as Packed;
      expect(pack.files).toContain('package/LICENSE');
      const { stdout } = await exec('tar', ['-xzOf', pack.tarball, 'package/LICENSE']);
      expect(stdout).toBe(license);
      expect(stdout).toMatch(/MIT License[\s\S]*2026 posthog-kit contributors/);

      const m = pack.manifest;
      expect(m.license).toBe('MIT');
      expect(m.keywords?.length).toBeGreaterThan(0);
      expect(m.repository).toEqual({
        type: 'git',
        url: 'git+https://github.com/posthog-kit/posthog-kit.git',
        directory: `packages/${folder}`,
      });
      expect(m.homepage).toBe(
        `https://github.com/posthog-kit/posthog-kit/tree/main/packages/${folder}#readme`,
      );
      expect(m.bugs).toBe('https://github.com/posthog-kit/posthog-kit/issues');
      expect(JSON.stringify([m.dependencies, m.peerDependencies])).not.toMatch(/workspace:/);

      expect(pack.files.filter((f) => f.endsWith('.map'))).toEqual([]);
      const code = pack.files.filter((f) => /\.(mjs|cjs|js|d\.mts|d\.cts)$/.test(f));
      const { stdout: all } = await exec('tar', ['-xzOf', pack.tarball, ...code], {
        maxBuffer: 64 * 1024 * 1024,
      });
      expect(all).not.toMatch(/sourceMappingURL/);
    },
  );
});

describe.each(MANAGERS)('installed with %s outside the workspace', (manager) => {
  const project = () => projects.get(manager) as { dir: string; emulator: Emulator };

  it('took every @posthog-kit package from the tarballs, none from the registry', () => {
    const { dir } = project();
    if (manager === 'npm') {
      const lock = readJson<{ packages: Record<string, { resolved?: string }> }>(
        join(dir, 'package-lock.json'),
      );
      const ours = Object.entries(lock.packages).filter(([path]) =>
        /node_modules\/@posthog-kit\//.test(path),
      );
      expect(ours.map(([path]) => path)).toContain('node_modules/@posthog-kit/core');
      for (const [path, entry] of ours) expect(`${path} ${entry.resolved}`).toMatch(/ file:/);
    } else {
      const lock = readFileSync(join(dir, 'pnpm-lock.yaml'), 'utf8');
      const entries = lock.split('\n').filter((l) => /^ {2}'?@posthog-kit\/[\w-]+@/.test(l));
      expect(entries.some((l) => l.includes('@posthog-kit/core@'))).toBe(true);
      for (const line of entries) expect(line).toMatch(/@file:/);
    }
    expect(existsSync(join(dir, 'node_modules/.bin/posthog-emulator'))).toBe(true);
  });

  it('typechecks one file that imports every adapter (module nodenext)', async () => {
    const { dir } = project();
    const tsc = join(ROOT, 'node_modules/.bin/tsc');
    const result = await exec(tsc, ['-p', 'tsconfig.json'], { cwd: dir, env: userEnv() }).catch(
      (error: { stdout?: string; stderr?: string }) => error,
    );
    // Declarations are checked (no skipLibCheck), ours and the file's; other packages' own
    // declaration errors (h3 refers to crossws, which it does not depend on) are theirs.
    const errors = `${result.stdout}${result.stderr}`
      .split('\n')
      .filter((line) => /error TS/.test(line))
      .filter((line) => line.startsWith('check.ts') || line.includes('@posthog-kit/'));
    expect(errors).toEqual([]);
  });

  if (manager === 'pnpm') {
    it('cannot import @posthog-kit/core itself (no hoisting): the adapter alone must suffice', async () => {
      const { dir } = project();
      const probe = `import('@posthog-kit/core').then(() => console.log('found'), (e) => console.log(e.code))`;
      const { stdout } = await exec(node, ['--input-type=module', '-e', probe], { cwd: dir });
      expect(stdout.trim()).toBe('ERR_MODULE_NOT_FOUND');
    });
  }

  const cases = APPS.flatMap((app) => (['esm', 'cjs'] as const).map((format) => ({ app, format })));
  it.concurrent.for(cases)(
    '$app.name ($format): the README setup captures and reads a flag',
    { timeout: 40_000 },
    async ({ app, format }, { skip }) => {
      if (!ready.includes(app)) skip(`@posthog-kit/${app.name} has no ${app.entry} export yet`);
      await runApp(manager, manager, app, format);
    },
  );
});

describe(`installed with ${NEST_11.label} outside the workspace`, () => {
  const nest = APPS.find((app) => app.name === 'nestjs') as (typeof APPS)[number];
  it.concurrent.for(['esm', 'cjs'] as const)(
    'nestjs (%s): the README setup captures, reads a flag and reports a handler error',
    { timeout: 40_000 },
    async (format, { skip }) => {
      if (!ready.includes(nest)) skip('@posthog-kit/nestjs is not built');
      const { dir } = projects.get(NEST_11.label) as { dir: string };
      const core = readJson<Manifest>(join(dir, 'node_modules/@nestjs/core/package.json'));
      expect(core.version).toMatch(/^11\./);
      await runApp(NEST_11.label, 'nest11', nest, format);
    },
  );
});

/** Runs one app of a project on the Node under test; checks its answer and its events. */
async function runApp(
  label: Project,
  prefix: string,
  app: (typeof APPS)[number],
  format: 'esm' | 'cjs',
): Promise<void> {
  const { dir, emulator } = projects.get(label) as { dir: string; emulator: Emulator };
  const id = `${prefix}-${app.name}-${format}`;
  const env = userEnv({
    POSTHOG_PROJECT_API_KEY: 'phc_test_emulator',
    POSTHOG_HOST: emulator.url,
  });
  const file = `${app.name}.${format === 'esm' ? 'mjs' : 'cjs'}`;
  const run = await exec(node, [file], { cwd: dir, env, timeout: 30_000 }).catch(
    (error: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`${file} failed (${error.message}):\n${error.stdout}\n${error.stderr}`);
    },
  );
  expect(JSON.parse(run.stdout.trim().split('\n').at(-1) as string)).toEqual({
    status: 200,
    body: { v2: true },
  });
  expect(run.stderr).toBe('');

  const seen = async (event: string) => {
    const query = `distinct_id=${id}&event=${event}&count=1&timeout=5000`;
    const answer = await fetch(`${emulator.url}/_emulator/events?${query}`);
    expect(answer.status).toBe(200);
    return ((await answer.json()) as { events: Array<{ properties: Record<string, unknown> }> })
      .events;
  };
  expect((await seen('signed_up'))[0]?.properties).toMatchObject({
    format,
    $request_path: '/signup',
    $request_method: 'GET',
    $lib: 'posthog-node',
  });
  if (app.name === 'nestjs') {
    expect((await seen('$exception'))[0]?.properties).toMatchObject({
      $request_path: '/boom',
      $response_status_code: 500,
      $exception_list: [expect.objectContaining({ value: `nest boom ${format}` })],
    });
  }
  // The CLI's --json stream saw the same event.
  expect(emulator.stdout()).toContain(`"distinctId":"${id}"`);
}
