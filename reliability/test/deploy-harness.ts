// The deploy scenario's moving parts: the README's app written into a fresh project, started
// in its own process as a deploy starts it, driven over loopback, stopped with a signal, and
// measured from the signal to its 'exit' event.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { blocksOf, imports, packageOf } from '../../test/docs/blocks.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const APPS = fileURLToPath(new URL('./apps/', import.meta.url));
const PRELOAD = pathToFileURL(join(APPS, 'preload.mjs')).href;

/** An app's source and where it comes from. */
export interface AppSource {
  name: string;
  /** `packages/express/README.md:19`. */
  origin: string;
  code: string;
  /** The route whose handler captures one event per request. */
  route: { method: string; path: string; event: string };
}

/** The lines that set the kit up: `app.use(posthog())`, `posthogErrorHandler()`, `register(posthog)`. */
const SETUP_LINE = /\bposthog(?:ErrorHandler)?\(|\bregister\(\s*posthog\b/;

/** The same app without our kit: its setup lines gone (and, when run, no POSTHOG_* set). */
export const withoutKit = (code: string): string =>
  code
    .split('\n')
    .filter((line) => !SETUP_LINE.test(line))
    .join('\n');

/** The first route of `code` whose handler calls `capture('<event>', ...)`. */
function captureRoute(code: string): AppSource['route'] | undefined {
  const starts = [...code.matchAll(/\.(get|post|put|patch|delete)\(\s*['"](\/[^'"]*)['"]/g)];
  for (const [i, m] of starts.entries()) {
    const body = code.slice(m.index, starts[i + 1]?.index ?? code.length);
    const event = /\bcapture\(\s*['"]([^'"]+)['"]/.exec(body)?.[1];
    if (event) return { method: (m[1] as string).toUpperCase(), path: m[2] as string, event };
  }
  return undefined;
}

/** The README's setup block for an adapter (its first block that serves and calls posthog()), as written. */
export function appOf(pkg: string): AppSource {
  const readme = `packages/${pkg}/README.md`;
  const block = setupBlock(readme);
  if (!block) throw new Error(`${readme}: no setup block that serves and calls posthog()`);
  const origin = `${readme}:${block.line}`;
  const route = captureRoute(block.code);
  if (!route) throw new Error(`${origin}: no route that calls capture('<event>')`);
  return { name: pkg, origin, code: block.code, route };
}

/** The README's first block that serves and sets the kit up, if it has one. */
export const setupBlock = (readme: string) =>
  existsSync(join(ROOT, readme))
    ? blocksOf(readme).find((b) => b.kind === 'server' && SETUP_LINE.test(b.code))
    : undefined;

/** Where a package of the workspace is installed (the docs test's lookup, for the same reason). */
function locate(name: string): string | undefined {
  if (name.startsWith('@posthog-kit/')) {
    const dir = join(ROOT, 'packages', name.slice('@posthog-kit/'.length));
    return existsSync(join(dir, 'package.json')) ? dir : undefined;
  }
  const owners = [
    ROOT,
    ...['packages', 'examples'].flatMap((folder) =>
      readdirSync(join(ROOT, folder)).map((n) => join(ROOT, folder, n)),
    ),
  ];
  return owners.map((dir) => join(dir, 'node_modules', name)).find((dir) => existsSync(dir));
}

/** A fresh project outside the workspace with only what the apps import (built packages: dist). */
export function sandbox(sources: Array<{ file: string; code: string }>): {
  dir: string;
  remove: () => void;
} {
  const dir = mkdtempSync(join(tmpdir(), 'posthog-kit-deploy-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  const needed = new Set<string>();
  for (const { file, code } of sources) {
    writeFileSync(join(dir, file), code);
    for (const specifier of imports(code)) {
      const name = packageOf(specifier);
      if (name) needed.add(name);
    }
  }
  for (const name of needed) {
    const target = locate(name);
    if (!target) throw new Error(`${name}: no workspace member has it installed`);
    const link = join(dir, 'node_modules', name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(target, link, 'dir');
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A deploy's environment: the test runner's and CI's markers gone (srvx skips its graceful shutdown under CI/TEST). */
export function deployEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    if (/^(POSTHOG_|VITEST|npm_|PNPM_|NODE_OPTIONS$|NODE_ENV$|CI$|TEST$|PORT$|HOST$)/.test(key)) {
      continue;
    }
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** What keeps a process alive, as the preload reports it on SIGUSR2. */
export interface ActiveReport {
  resources: string[];
  timers: Array<{ kind: string; delayMs: number; createdAt: string[] }>;
  handles: Array<{ name: string; detail: string }>;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** From the signal (or the script's last line) to the 'exit' event. */
  ms: number;
  /** Set when it had not exited `hangAfterMs` later: what kept it up, then it was killed. */
  hung: ActiveReport | undefined;
}

/** A child started with the preload, its output kept, its reports parsed. */
export class App {
  readonly child: ChildProcess;
  #output = '';
  #reports: Array<Record<string, unknown>> = [];
  #waiters: Array<() => void> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;

  constructor(file: string, args: string[], cwd: string, env: Record<string, string>) {
    this.child = spawn(process.execPath, ['--import', PRELOAD, file, ...args], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => {
      this.#output += chunk.toString();
      this.#wake();
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    let partial = '';
    (this.child.stdio[3] as Readable).on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.#reports.push(JSON.parse(line));
      this.#wake();
    });
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        resolve({ code, signal, at: performance.now() });
        this.#wake();
      }),
    );
  }

  get output(): string {
    return this.#output;
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Resolves with `check()`'s value once it has one; rejects after `ms` or when the child ends first. */
  async until<T>(check: () => T | undefined, ms: number, what: string): Promise<T> {
    const deadline = performance.now() + ms;
    for (;;) {
      const value = check();
      if (value !== undefined) return value;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`${what}: the process ended first; output:\n${this.#output}`);
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`${what}: not within ${ms} ms; output:\n${this.#output}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  report(type: string): Record<string, unknown> | undefined {
    return this.#reports.findLast((r) => r.type === type);
  }

  /** The address it listens on, in a URL. */
  async listening(ms = 15_000): Promise<{ host: string; port: number }> {
    const address = await this.until(() => this.report('listening'), ms, 'listening');
    const raw = address.address as string;
    const host = ['::', '0.0.0.0'].includes(raw) ? '127.0.0.1' : raw;
    return { host, port: address.port as number };
  }

  /**
   * Waits for the exit, timed from `since`. Past `hangAfterMs` it asks the process what keeps
   * it alive (SIGUSR2), then kills it: the answer is the measurement, not a test timeout.
   */
  async exit(since: number, hangAfterMs: number): Promise<Exit> {
    const timer = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), hangAfterMs));
    const first = await Promise.race([this.exited, timer]);
    if (first !== 'hung')
      return { code: first.code, signal: first.signal, ms: first.at - since, hung: undefined };
    const before = this.#reports.length;
    this.child.kill('SIGUSR2');
    await this.until(
      () => (this.#reports.length > before ? true : undefined),
      2_000,
      'the hang report',
    ).catch(() => {});
    const hung = (this.report('active') ?? {
      resources: ['(no report)'],
      timers: [],
      handles: [],
    }) as unknown as ActiveReport;
    this.child.kill('SIGKILL');
    const ended = await this.exited;
    return { code: ended.code, signal: ended.signal, ms: ended.at - since, hung };
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** One line per thing that kept the process up. */
export function describeHang(report: ActiveReport): string {
  const lines = [`active resources: ${report.resources.join(', ')}`];
  for (const t of report.timers) {
    lines.push(
      `ref'd ${t.kind}(${t.delayMs} ms) created at:`,
      ...t.createdAt.map((f) => `    ${f}`),
    );
  }
  for (const h of report.handles) lines.push(`ref'd handle: ${h.name} ${h.detail}`);
  return lines.join('\n');
}

export interface Traffic {
  /** Requests answered 2xx: each captured one event, with this distinct id. */
  ok: string[];
  failed: string[];
  ms: number;
}

/**
 * `count` requests to `route`, `concurrency` at a time, each with its own distinct id, over
 * keep-alive connections that stay open (idle) afterwards, as a load balancer's do.
 */
export async function drive(
  base: { host: string; port: number },
  route: AppSource['route'],
  options: { count: number; concurrency: number; idPrefix: string; agent: Agent; from?: number },
): Promise<Traffic> {
  const ok: string[] = [];
  const failed: string[] = [];
  const from = options.from ?? 0;
  let next = from;
  const started = performance.now();
  const body = route.method === 'GET' ? undefined : JSON.stringify({ plan: 'pro' });
  const one = (id: string) =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: base.host,
          port: base.port,
          method: route.method,
          path: route.path,
          agent: options.agent,
          timeout: 5_000,
          headers: {
            'x-posthog-distinct-id': id,
            ...(body
              ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
              : {}),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end(body);
    });
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (next < from + options.count) {
        const id = `${options.idPrefix}-${next++}`;
        const status = await one(id).catch(() => 0);
        (status >= 200 && status < 300 ? ok : failed).push(id);
      }
    }),
  );
  return { ok, failed, ms: performance.now() - started };
}

/** At most `n` tasks at a time. */
export function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: Array<() => void> = [];
  return async (task) => {
    if (active >= n) await new Promise<void>((resolve) => queue.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}

export { Agent };
