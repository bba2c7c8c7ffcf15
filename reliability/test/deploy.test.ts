// A deploy, as a platform does it: the README's app (one-line setup, settings from POSTHOG_*)
// under traffic in its own process, then SIGTERM while events are still queued. Every event a
// 2xx answer stands for must reach PostHog (the emulator), and the process must end as it
// would have without the kit (same exit code or signal), within the framework's own close
// time (the same app without the kit, measured in this run) plus 2 s; with and without a
// personal key (posthog-node then polls flag definitions, a timer that once kept h3 up
// forever). Then a plain script that forgets shutdown(): everything sent, and it ends by
// itself. A process that does not end is asked what keeps it up (see apps/preload.mjs).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { flag, type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Agent,
  App,
  type AppSource,
  appOf,
  deployEnv,
  describeHang,
  drive,
  type Exit,
  limiter,
  ROOT,
  sandbox,
  setupBlock,
  type Traffic,
  withoutKit,
} from './deploy-harness.ts';

/** The kit's default flushAt: posthog-node sends a batch once this many are queued. */
const FLUSH_AT = 100;
/** Under load: posthog-node sends batches while the requests run. */
const REQUESTS = 250;
/** Then a tail (250 + 37: not a multiple of flushAt) that stays queued until the signal. */
const TAIL = 37;
const CONCURRENCY = 10;
/** What the kit may add to the framework's own close. */
const ALLOWANCE_MS = 2_000;
/** Past the kit's own flush bound (5 s): a process still up by then is hung, and says why. */
const HANG_AFTER_MS = 9_000;
const SCRIPT_EVENTS = 137;
/** Between the traffic and the tail: batches in flight land, so "queued" is exact. */
const SETTLE_MS = 150;

type Variant = 'baseline' | 'kit' | 'kit + personal key' | 'kit, shutdown hooks off';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ms = (n: number) => Number(n.toFixed(1));

/** Fastify runs once its adapter exports the plugin and its README has the setup (both being written). */
function fastifySkip(): string | undefined {
  const src = join(ROOT, 'packages/fastify/src/index.ts');
  if (!existsSync(src)) return 'packages/fastify/src/index.ts does not exist';
  if (!/export (?:const|function) posthog\b/.test(readFileSync(src, 'utf8'))) {
    return 'packages/fastify/src exports no posthog plugin yet';
  }
  if (!existsSync(join(ROOT, 'packages/fastify/dist/index.mjs')))
    return 'packages/fastify is not built';
  if (!setupBlock('packages/fastify/README.md'))
    return 'packages/fastify/README.md has no setup block yet';
  return undefined;
}

const frameworks: Array<{ label: string; pkg: string; skip?: string | undefined }> = [
  { label: 'Express 5', pkg: 'express' },
  { label: 'Koa 3', pkg: 'koa' },
  { label: 'Hono 4 on @hono/node-server', pkg: 'hono' },
  { label: 'h3 v2, serve() from srvx', pkg: 'h3' },
  { label: 'Fastify 5', pkg: 'fastify', skip: fastifySkip() },
];

interface ServerRun {
  variant: Variant;
  traffic: Traffic;
  /** Events of this run at the emulator just before the signal (the rest were queued). */
  arrivedBeforeSignal: number;
  /** Distinct ids of the events of this run that arrived, in arrival order. */
  arrived: string[];
  exit: Exit;
  definitionsFetches: number;
  output: string;
}

interface ScriptRun {
  variant: Variant;
  arrived: string[];
  exit: Exit;
  definitionsFetches: number;
  output: string;
}

let dir: string;
let removeSandbox = () => {};
const apps = new Map<string, AppSource>();
/** One row per run, printed as a table at the end (harness.ts's Figures pulls in every bridge). */
const rows: Array<Record<string, string | number>> = [];
const figures = {
  add: (row: Record<string, string | number>) => rows.push(row),
  print: () => {
    console.log(
      `\nDeploys: ${REQUESTS} + ${TAIL} requests (one event each), then SIGTERM with the tail queued`,
    );
    console.table(rows);
  },
};

beforeAll(() => {
  const sources: Array<{ file: string; code: string }> = [
    { file: 'script.ts', code: readFileSync(new URL('./apps/script.ts', import.meta.url), 'utf8') },
  ];
  for (const fw of frameworks) {
    if (fw.skip) continue;
    const app = appOf(fw.pkg);
    apps.set(fw.pkg, app);
    sources.push({ file: `${fw.pkg}.ts`, code: app.code });
    sources.push({ file: `${fw.pkg}-baseline.ts`, code: withoutKit(app.code) });
  }
  ({ dir, remove: removeSandbox } = sandbox(sources));
});
afterAll(() => {
  figures.print();
  removeSandbox();
});

function envFor(variant: Variant, emulator: PostHogEmulator): Record<string, string> {
  if (variant === 'baseline') return deployEnv({});
  return deployEnv({
    POSTHOG_PROJECT_API_KEY: emulator.projectApiKey,
    POSTHOG_HOST: emulator.url,
    ...(variant === 'kit + personal key'
      ? { POSTHOG_PERSONAL_API_KEY: emulator.personalApiKey }
      : {}),
    ...(variant === 'kit, shutdown hooks off' ? { POSTHOG_SHUTDOWN_HOOKS: 'false' } : {}),
  });
}

const idsOf = (emulator: PostHogEmulator, event: string, prefix: string) =>
  emulator.events
    .filter((e) => e.event === event && e.distinctId.startsWith(`${prefix}-`))
    .map((e) => e.distinctId);

async function deploy(source: AppSource, variant: Variant): Promise<ServerRun> {
  const emulator = await startEmulator({ flags: [flag('new-dashboard')] });
  const prefix = `${source.name}-${variant.replace(/\W+/g, '_')}`;
  const file = variant === 'baseline' ? `${source.name}-baseline.ts` : `${source.name}.ts`;
  const app = new App(file, [], dir, envFor(variant, emulator));
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  try {
    const address = await app.listening();
    if (variant === 'kit + personal key') {
      // Local evaluation is on: the definitions were fetched, the poller is armed.
      await app.until(
        () => (emulator.definitionsFetchCount > 0 ? true : undefined),
        10_000,
        'the first flag definitions fetch',
      );
    }
    const traffic = await drive(address, source.route, {
      count: REQUESTS,
      concurrency: CONCURRENCY,
      idPrefix: prefix,
      agent,
    });
    // Batches in flight land and posthog-node drains its queue; then a tail too short to
    // reach flushAt, answered, and the signal at once: the tail (at least) is queued, none in flight.
    await sleep(SETTLE_MS);
    const settled = traffic.ok.length - idsOf(emulator, source.route.event, prefix).length;
    const tail = await drive(address, source.route, {
      count: Math.max(0, Math.min(TAIL, FLUSH_AT - 1 - settled)),
      concurrency: CONCURRENCY,
      idPrefix: prefix,
      agent,
      from: REQUESTS,
    });
    traffic.ok.push(...tail.ok);
    traffic.failed.push(...tail.failed);
    const arrivedBeforeSignal = idsOf(emulator, source.route.event, prefix).length;
    const signalled = performance.now();
    app.child.kill('SIGTERM');
    const exit = await app.exit(signalled, HANG_AFTER_MS);
    return {
      variant,
      traffic,
      arrivedBeforeSignal,
      arrived: idsOf(emulator, source.route.event, prefix),
      exit,
      definitionsFetches: emulator.definitionsFetchCount,
      output: app.output,
    };
  } finally {
    app.kill();
    agent.destroy();
    await emulator.close();
  }
}

async function script(variant: Variant): Promise<ScriptRun> {
  const emulator = await startEmulator({ flags: [flag('new-dashboard')] });
  const prefix = `script-${variant.replace(/\W+/g, '_')}`;
  const app = new App('script.ts', [String(SCRIPT_EVENTS), prefix], dir, envFor(variant, emulator));
  try {
    await app.until(
      () => (/captured \d+ events/.test(app.output) ? true : undefined),
      15_000,
      'the script',
    );
    const exit = await app.exit(performance.now(), HANG_AFTER_MS);
    return {
      variant,
      arrived: idsOf(emulator, 'job_done', prefix),
      exit,
      definitionsFetches: emulator.definitionsFetchCount,
      output: app.output,
    };
  } finally {
    app.kill();
    await emulator.close();
  }
}

// Two processes at a time on a 2-core machine; each framework's runs one after another, so a
// baseline and its kit runs see the same machine.
const slot = limiter(2);
const runs = new Map<string, Promise<ServerRun[]>>();
function runsOf(pkg: string): Promise<ServerRun[]> {
  let started = runs.get(pkg);
  if (!started) {
    started = slot(async () => {
      const source = apps.get(pkg) as AppSource;
      const out: ServerRun[] = [];
      const variants: Variant[] = ['baseline', 'kit', 'kit + personal key'];
      // The control, once: without the hooks a deploy loses what was queued (issue 12's 0 of N).
      if (pkg === 'express') variants.push('kit, shutdown hooks off');
      for (const variant of variants) out.push(await deploy(source, variant));
      return out;
    });
    runs.set(pkg, started);
  }
  return started;
}
const scripts = () => {
  const started = slot(async () => [
    await script('baseline'),
    await script('kit'),
    await script('kit + personal key'),
  ]);
  return () => started;
};
let scriptRuns: () => Promise<ScriptRun[]>;

beforeAll(() => {
  // Everything starts now, two at a time; each test waits for its own.
  for (const pkg of apps.keys()) void runsOf(pkg).catch(() => {});
  scriptRuns = scripts();
  void scriptRuns().catch(() => {});
});

const exitOf = (exit: Exit) =>
  exit.hung ? 'hung (killed)' : exit.signal ? `by ${exit.signal}` : `code ${exit.code}`;

function explain(run: { exit: Exit; output: string }): string {
  const hang = run.exit.hung
    ? `\nstill up ${HANG_AFTER_MS} ms on:\n${describeHang(run.exit.hung)}`
    : '';
  return `${hang}\noutput:\n${run.output.slice(-3000)}`;
}

describe.each(frameworks)('$label', (fw) => {
  it.skipIf(fw.skip !== undefined)(
    `baseline: the same app without the kit answers the traffic and stops on SIGTERM${fw.skip ? ` (skipped: ${fw.skip})` : ''}`,
    { timeout: 120_000 },
    async () => {
      const [baseline] = (await runsOf(fw.pkg)) as [ServerRun];
      expect(baseline.traffic.failed, explain(baseline)).toEqual([]);
      expect(baseline.arrived).toEqual([]);
      expect(baseline.exit.hung, explain(baseline)).toBeUndefined();
    },
  );

  it.skipIf(fw.skip !== undefined).each(['kit', 'kit + personal key'] as const)(
    `%s: SIGTERM with events queued: every event arrives; it ends as without the kit, within its close + ${ALLOWANCE_MS} ms`,
    { timeout: 120_000 },
    async (variant) => {
      const all = await runsOf(fw.pkg);
      const baseline = all[0] as ServerRun;
      const run = all.find((r) => r.variant === variant) as ServerRun;
      const source = apps.get(fw.pkg) as AppSource;
      figures.add({
        app: `${fw.label} (${source.origin})`,
        personalKey: variant === 'kit' ? 'no' : 'yes',
        answered2xx: run.traffic.ok.length,
        queuedAtSignal: run.traffic.ok.length - run.arrivedBeforeSignal,
        arrived: run.arrived.length,
        exitMs: ms(run.exit.ms),
        baselineExitMs: ms(baseline.exit.ms),
        exit: exitOf(run.exit),
        baselineExit: exitOf(baseline.exit),
        definitionsFetches: run.definitionsFetches,
      });

      expect(run.traffic.failed, explain(run)).toEqual([]);
      // The signal came while events were queued, or this proves nothing.
      expect(run.traffic.ok.length - run.arrivedBeforeSignal).toBeGreaterThanOrEqual(TAIL);
      expect(run.exit.hung, explain(run)).toBeUndefined();
      // Each 2xx answer captured one event with its request's distinct id: all of them, once.
      expect([...run.arrived].sort(), explain(run)).toEqual([...run.traffic.ok].sort());
      expect({ code: run.exit.code, signal: run.exit.signal }).toEqual({
        code: baseline.exit.code,
        signal: baseline.exit.signal,
      });
      expect(run.exit.ms, explain(run)).toBeLessThanOrEqual(baseline.exit.ms + ALLOWANCE_MS);
      if (variant === 'kit + personal key') expect(run.definitionsFetches).toBeGreaterThan(0);
    },
  );
});

describe('the control: Express with POSTHOG_SHUTDOWN_HOOKS=false', () => {
  it('loses the events queued at SIGTERM, so the scenario tells a kit that flushes from one that does not', {
    timeout: 120_000,
  }, async () => {
    const run = (await runsOf('express')).find(
      (r) => r.variant === 'kit, shutdown hooks off',
    ) as ServerRun;
    figures.add({
      app: 'Express 5, POSTHOG_SHUTDOWN_HOOKS=false (control)',
      personalKey: 'no',
      answered2xx: run.traffic.ok.length,
      queuedAtSignal: run.traffic.ok.length - run.arrivedBeforeSignal,
      arrived: run.arrived.length,
      exitMs: ms(run.exit.ms),
      baselineExitMs: '-',
      exit: exitOf(run.exit),
      baselineExit: '-',
      definitionsFetches: run.definitionsFetches,
    });
    expect(run.traffic.failed, explain(run)).toEqual([]);
    expect(run.traffic.ok.length - run.arrivedBeforeSignal).toBeGreaterThanOrEqual(TAIL);
    expect(run.arrived.length).toBe(run.arrivedBeforeSignal);
    expect(run.exit.signal).toBe('SIGTERM');
  });
});

describe('a script that forgets shutdown()', () => {
  it.each(['kit', 'kit + personal key'] as const)(
    `%s: every event arrives and it ends by itself (code 0) within ${ALLOWANCE_MS} ms of its last line more than without the kit`,
    { timeout: 120_000 },
    async (variant) => {
      const all = await scriptRuns();
      const baseline = all[0] as ScriptRun;
      const run = all.find((r) => r.variant === variant) as ScriptRun;
      figures.add({
        app: 'script (reliability/test/apps/script.ts)',
        personalKey: variant === 'kit' ? 'no' : 'yes',
        answered2xx: '-',
        queuedAtSignal: '-',
        arrived: `${run.arrived.length} of ${SCRIPT_EVENTS}`,
        exitMs: ms(run.exit.ms),
        baselineExitMs: ms(baseline.exit.ms),
        exit: exitOf(run.exit),
        baselineExit: exitOf(baseline.exit),
        definitionsFetches: run.definitionsFetches,
      });

      expect(baseline.exit, explain(baseline)).toMatchObject({ code: 0, hung: undefined });
      expect(run.exit.hung, explain(run)).toBeUndefined();
      expect(run.exit.code, explain(run)).toBe(0);
      expect(run.arrived.length, explain(run)).toBe(SCRIPT_EVENTS);
      expect(new Set(run.arrived).size).toBe(SCRIPT_EVENTS);
      expect(run.exit.ms, explain(run)).toBeLessThanOrEqual(baseline.exit.ms + ALLOWANCE_MS);
      if (variant === 'kit + personal key') expect(run.definitionsFetches).toBeGreaterThan(0);
    },
  );
});
