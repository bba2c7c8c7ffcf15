// Per framework: bare, our middleware (context only), ours with one capture and one local
// flag evaluation per request, and posthog-node's own integration alone and with the same
// work. App, emulator and load generator each in their own process; warm-up; rounds
// interleaved; requests/s and p99 as ratios to bare from the same round; medians reported.
//
//   node bench/overhead.ts [--frameworks express,koa,hono,h3] [--rounds 3] [--duration 10]
//                          [--connections 50] [--client-options '{"flushAt":20}']
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Config } from './apps/common.ts';
import { load } from './lib/load.ts';
import { argValue, ask, median, startNode } from './lib/process.ts';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const FRAMEWORKS: Record<string, Config[]> = {
  express: ['bare', 'context', 'work', 'posthog-context', 'posthog-work'],
  koa: ['bare', 'context', 'work'],
  hono: ['bare', 'context', 'work', 'posthog-context', 'posthog-work'],
  h3: ['bare', 'context', 'work'],
};
const frameworks = argValue('frameworks', Object.keys(FRAMEWORKS).join(',')).split(',');
const rounds = Number(argValue('rounds', '3'));
const duration = Number(argValue('duration', '10'));
const warmup = Number(argValue('warmup', '3'));
const connections = Number(argValue('connections', '50'));
const clientOptions = argValue('client-options', '{}');

const emulator = await startNode<{ url: string; projectKey: string; personalKey: string }>(
  here('./lib/emulator.ts'),
  [],
  { ipc: true },
);
const env = {
  EMULATOR_URL: emulator.info.url,
  PROJECT_KEY: emulator.info.projectKey,
  PERSONAL_KEY: emulator.info.personalKey,
  CLIENT_OPTIONS: clientOptions,
};

type Sample = { rps: number; p99: number; errors: number; events: number };
const samples: Record<string, Record<string, Sample[]>> = {};

try {
  for (let round = 1; round <= rounds; round++) {
    for (const framework of frameworks) {
      for (const config of FRAMEWORKS[framework] ?? []) {
        const app = await startNode<{ port: number }>(
          here('./apps/server.ts'),
          [framework, config],
          { env },
        );
        try {
          const url = `http://127.0.0.1:${app.info.port}/hello`;
          await load({ url, durationSeconds: warmup, connections });
          const before = await ask<{ events: number }>(emulator.proc, 'count');
          const result = await load({ url, durationSeconds: duration, connections });
          await new Promise((r) => setTimeout(r, 300));
          const after = await ask<{ events: number }>(emulator.proc, 'count');
          const sample = {
            rps: result.requestsPerSecond,
            p99: result.p99Ms,
            errors: result.errors + result.non2xx,
            events: after.events - before.events,
          };
          const byConfig = samples[framework] ?? {};
          samples[framework] = byConfig;
          byConfig[config] = [...(byConfig[config] ?? []), sample];
          console.error(
            `round ${round} ${framework.padEnd(8)} ${config.padEnd(16)} ${Math.round(sample.rps)} req/s  p99 ${sample.p99} ms  errors ${sample.errors}  events ${sample.events}`,
          );
        } finally {
          await app.stop();
        }
      }
    }
  }
} finally {
  await emulator.stop();
}

// Ratios to bare within each round, then the median over rounds.
const rows: Array<Record<string, string | number>> = [];
for (const [framework, byConfig] of Object.entries(samples)) {
  const bare = byConfig.bare ?? [];
  for (const [config, list] of Object.entries(byConfig)) {
    const ratios = list.map((s, i) => s.rps / (bare[i]?.rps ?? Number.NaN));
    const p99Ratios = list.map((s, i) => s.p99 / (bare[i]?.p99 || Number.NaN));
    rows.push({
      framework,
      config,
      'req/s (median)': Math.round(median(list.map((s) => s.rps))),
      'ratio to bare (median)': Number(median(ratios).toFixed(3)),
      'p99 ms (median)': median(list.map((s) => s.p99)),
      'p99 ratio (median)': Number(median(p99Ratios).toFixed(2)),
      errors: list.reduce((a, s) => a + s.errors, 0),
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
      samples,
    },
    null,
    2,
  ),
);
console.error(`results written to ${file}`);
