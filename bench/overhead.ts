// Per framework: bare, our middleware (context only), ours with one capture and one local
// flag evaluation per request, and posthog-node's own integration alone and with the same
// work. App, emulator and load generator each in their own process; warm-up; rounds
// interleaved and rotated; requests/s, p99 and the app's CPU time per request as ratios to
// bare from the same round; medians reported. The app gets a CPU of its own (taskset).
//
//   node bench/overhead.ts [--frameworks express,koa,hono,h3,fastify] [--rounds 10] [--duration 3] [--no-pin]
//                          [--connections 50] [--configs context,work]
//                          [--client-options '{"flushAt":20}'] (our kit only; posthog-node keeps its defaults)
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Config } from './apps/common.ts';
import { load } from './lib/load.ts';
import { argValue, ask, median, pinning, type Started, startNode } from './lib/process.ts';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const FRAMEWORKS: Record<string, Config[]> = {
  express: ['bare', 'context', 'work', 'posthog-context', 'posthog-work', 'als-floor'],
  koa: ['bare', 'context', 'work', 'als-floor'],
  hono: ['bare', 'context', 'work', 'posthog-context', 'posthog-work'],
  nestjs: ['bare', 'context', 'work', 'posthog-context', 'posthog-work', 'als-floor'],
  'nestjs-fastify': ['bare', 'context', 'work', 'posthog-context', 'posthog-work'],
  h3: ['bare', 'context', 'work'],
  fastify: ['bare', 'context', 'work', 'als-floor'],
};
const frameworks = argValue('frameworks', Object.keys(FRAMEWORKS).join(',')).split(',');
const rounds = Number(argValue('rounds', '10'));
const duration = Number(argValue('duration', '3'));
const warmup = Number(argValue('warmup', '2'));
const connections = Number(argValue('connections', '50'));
const clientOptions = argValue('client-options', '{}');
const onlyConfigs = argValue('configs', '').split(',').filter(Boolean);

const pin = pinning();
const emulator = await startNode<{ url: string; projectKey: string; personalKey: string }>(
  here('./lib/emulator.ts'),
  [],
  { ipc: true, cpus: pin.others },
);
const env = {
  STATS: '1',
  EMULATOR_URL: emulator.info.url,
  PROJECT_KEY: emulator.info.projectKey,
  PERSONAL_KEY: emulator.info.personalKey,
  CLIENT_OPTIONS: clientOptions,
};

type Sample = {
  rps: number;
  p99: number;
  errors: number;
  /** The app's CPU time (user + system) per request served, in microseconds. */
  cpuPerRequest: number;
};
const samples: Record<string, Record<string, Sample[]>> = {};

/** The round's configurations, rotated by one each round so none always runs first. */
function order(configs: Config[], round: number): Config[] {
  const shift = (round - 1) % configs.length;
  return [...configs.slice(shift), ...configs.slice(0, shift)];
}

/** Per framework and configuration: requests served, and their events that arrived. */
const delivery: Record<string, Record<string, { requests: number; events: number }>> = {};
try {
  for (const framework of frameworks) {
    const configs = (FRAMEWORKS[framework] ?? []).filter(
      (c) => onlyConfigs.length === 0 || c === 'bare' || onlyConfigs.includes(c),
    );
    // Every configuration's app runs for the whole framework, idle unless loaded, so
    // rounds alternate quickly and a slow spell of the machine hits all of them alike.
    const apps = new Map<Config, Started<{ port: number; statsPort: number }>>();
    try {
      for (const config of configs) {
        apps.set(
          config,
          await startNode(here('./apps/server.ts'), [framework, config], { env, cpus: pin.app }),
        );
      }
      const urlOf = (config: Config) => `http://127.0.0.1:${apps.get(config)?.info.port}/hello`;
      const cpu = async (config: Config) =>
        (
          (await (
            await fetch(`http://127.0.0.1:${apps.get(config)?.info.statsPort}/cpu`)
          ).json()) as { cpuMicros: number }
        ).cpuMicros;
      const served: Record<string, number> = {};
      emulator.proc.send('reset');
      for (const config of configs) {
        const result = await load({ url: urlOf(config), durationSeconds: warmup, connections });
        served[config] = result.total;
      }
      for (let round = 1; round <= rounds; round++) {
        for (const config of order(configs, round)) {
          const cpuBefore = await cpu(config);
          const result = await load({ url: urlOf(config), durationSeconds: duration, connections });
          const cpuAfter = await cpu(config);
          served[config] = (served[config] ?? 0) + result.total;
          const sample = {
            rps: result.requestsPerSecond,
            p99: result.p99Ms,
            errors: result.errors + result.non2xx,
            cpuPerRequest: (cpuAfter - cpuBefore) / Math.max(1, result.total),
          };
          const byConfig = samples[framework] ?? {};
          samples[framework] = byConfig;
          byConfig[config] = [...(byConfig[config] ?? []), sample];
          console.error(
            `round ${round} ${framework.padEnd(8)} ${config.padEnd(16)} ${Math.round(sample.rps)} req/s  p99 ${sample.p99} ms  ${sample.cpuPerRequest.toFixed(1)} µs CPU/req  errors ${sample.errors}`,
          );
        }
      }
      // posthog-node flushes on its interval: give the last batches time to arrive, then
      // compare each capturing configuration's events with the requests it served.
      await new Promise((r) => setTimeout(r, 6_000));
      const { byName } = await ask<{ byName: Record<string, number> }>(emulator.proc, 'count');
      delivery[framework] = {};
      for (const config of configs) {
        if (!config.endsWith('work')) continue;
        delivery[framework][config] = {
          requests: served[config] ?? 0,
          events: byName[`bench_hello_${config}`] ?? 0,
        };
      }
    } finally {
      for (const app of apps.values()) await app.stop();
    }
  }
} finally {
  await emulator.stop();
}

// Ratios to bare within each round, then the median over rounds. The CPU ratio is bare's
// CPU per request over this one's: the throughput ratio the app would reach if CPU were
// all that limited it, and much steadier than req/s on a shared machine.
const rows: Array<Record<string, string | number>> = [];
for (const [framework, byConfig] of Object.entries(samples)) {
  const bare = byConfig.bare ?? [];
  for (const [config, list] of Object.entries(byConfig)) {
    const ratios = list.map((s, i) => s.rps / (bare[i]?.rps ?? Number.NaN));
    const p99Ratios = list.map((s, i) => s.p99 / (bare[i]?.p99 || Number.NaN));
    const cpuRatios = list.map((s, i) => (bare[i]?.cpuPerRequest ?? Number.NaN) / s.cpuPerRequest);
    rows.push({
      framework,
      config,
      'req/s': Math.round(median(list.map((s) => s.rps))),
      'req/s ratio': Number(median(ratios).toFixed(3)),
      'p99 ms': median(list.map((s) => s.p99)),
      'p99 ratio': Number(median(p99Ratios).toFixed(2)),
      'CPU µs/req': Number(median(list.map((s) => s.cpuPerRequest)).toFixed(1)),
      'CPU ratio': Number(median(cpuRatios).toFixed(3)),
      errors: list.reduce((a, s) => a + s.errors, 0),
      'events lost': (() => {
        const d = delivery[framework]?.[config];
        return d ? d.requests - d.events : '';
      })(),
    });
  }
}
console.table(rows);
mkdirSync(here('./results'), { recursive: true });
const file = here(`./results/overhead-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(
  file,
  JSON.stringify(
    {
      machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
      settings: { rounds, duration, warmup, connections, clientOptions },
      rows,
      delivery,
      samples,
    },
    null,
    2,
  ),
);
console.error(`results written to ${file}`);
