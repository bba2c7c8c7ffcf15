// The cost of exceptions and code variables.
//
// 1. Thrown and caught, never captured (a tight loop in a process of its own per setting):
//    - off: code variables off (the debugger is not even loaded);
//    - on: the setting on, default rate limit (50 pauses a second, then a cool-down);
//    - on-unlimited: the setting on, no rate limit nor time budget: what a pause costs;
//    - on-library: the setting on, the throw and catch inside node_modules;
//    - on-large-object: the setting on, three locals of the throwing frame reference an
//      object with 1M keys (listing its keys takes ~250 ms): the per-pause time limit and
//      the time budget per second bound what it costs.
//    Reported as microseconds per throw and milliseconds spent paused per second.
// 2. Thrown in a request and captured by the middleware (Express, autocannon, the emulator
//    in its own process): no kit, kit with code variables off, on (default rate limit),
//    on without rate limit. Reported as requests/s, p99 and events received.
//
//   node bench/exceptions.ts [--duration 10] [--loop-seconds 3] [--connections 50] [--rounds 3]
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { runInThisContext } from 'node:vm';
import { createPostHogKit, type PostHogKit } from '@posthog-kit/core';
import { codeVariablesStats, configureCodeVariables } from '@posthog-kit/core/code-variables';
import { posthog, posthogErrorHandler } from '@posthog-kit/express';
import express from 'express';
import { load } from './lib/load.ts';
import { argValue, ask, median, startNode } from './lib/process.ts';

type LoopConfig = 'off' | 'on' | 'on-unlimited' | 'on-library' | 'on-large-object';
type HttpConfig = 'bare' | 'off' | 'on' | 'on-unlimited';
const LOOPS: LoopConfig[] = ['off', 'on', 'on-unlimited', 'on-library', 'on-large-object'];
const HTTP: HttpConfig[] = ['bare', 'off', 'on', 'on-unlimited'];

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const self = here('./exceptions.ts');

async function kitFor(config: string, host: string, apiKey: string): Promise<PostHogKit> {
  const kit = createPostHogKit({
    env: {},
    apiKey,
    host,
    captureExceptionCodeVariables: config.startsWith('on'),
  });
  await kit.ready;
  if (config === 'on-unlimited') {
    configureCodeVariables({ maxExceptionsPerSecond: 1e9, maxPauseMsPerSecond: 1e9 });
  }
  return kit;
}

// ----- the app's code: a throw three in-app calls deep -----

interface Order {
  id: string;
  items: Array<{ sku: string; price: number }>;
}

function checkLimit(order: Order, limit: number): void {
  const total = order.items.reduce((sum, item) => sum + item.price, 0);
  if (total > limit) {
    throw Object.assign(new Error(`order ${order.id} over the limit`), { status: 500 });
  }
}

function placeOrder(userId: string): void {
  const order: Order = {
    id: `o-${userId}`,
    items: [
      { sku: 'book', price: 12 },
      { sku: 'pen', price: 3 },
    ],
  };
  const limit = 10;
  checkLimit(order, limit);
}

function lookUp(index: Record<string, number>, key: string): number {
  const alias = index;
  const holder = { index };
  const found = alias[key] ?? holder.index[key];
  if (found === undefined) throw new Error(`no ${key} in the index`);
  return found;
}

// ----- child: a tight loop -----

async function loopChild(config: LoopConfig, seconds: number): Promise<void> {
  // Nothing is sent: the loop never captures. An unreachable host keeps it so.
  const kit = await kitFor(config, 'http://127.0.0.1:9', 'phc_bench');
  const library = runInThisContext(
    '(function throwsAndCatches(n) { try { throw new Error("internal " + n); } catch (e) { return e; } })',
    { filename: '/srv/app/node_modules/some-lib/index.js' },
  ) as (n: number) => unknown;
  const index: Record<string, number> = {};
  if (config === 'on-large-object') for (let i = 0; i < 1_000_000; i++) index[`k${i}`] = i;
  const once =
    config === 'on-library'
      ? (i: number) => library(i)
      : config === 'on-large-object'
        ? (i: number) => {
            try {
              lookUp(index, `missing-${i}`);
            } catch (error) {
              return error;
            }
          }
        : (i: number) => {
            try {
              placeOrder(`u${i}`);
            } catch (error) {
              return error;
            }
          };
  // The large object is measured from its first throw on: its first listing counts.
  const large = config === 'on-large-object';
  if (!large) for (let i = 0; i < 2_000; i++) once(i); // warm-up
  if (config !== 'on-unlimited') configureCodeVariables(); // a fresh rate-limit window
  const before = codeVariablesStats();
  const end = performance.now() + seconds * 1_000;
  let n = 0;
  const start = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < (large ? 1 : 100); i++) once(n++);
  }
  const elapsed = performance.now() - start;
  const after = codeVariablesStats();
  console.log(
    `ready ${JSON.stringify({
      usPerThrow: (elapsed * 1_000) / n,
      throws: n,
      pauses: after.pauses - before.pauses,
      snapshots: after.snapshots - before.snapshots,
      // Absent from versions without the time bounds.
      pauseMsPerSecond:
        after.pauseMs === undefined ? undefined : (after.pauseMs - before.pauseMs) / seconds,
      slowestPauseMs: after.slowestPauseMs,
    })}`,
  );
  await kit.shutdown(100);
  process.exit(0);
}

// ----- child: an Express app whose route throws -----

async function appChild(config: HttpConfig): Promise<void> {
  const app = express();
  app.set('env', 'test'); // no error log per request
  const kit =
    config === 'bare'
      ? undefined
      : await kitFor(config, process.env.EMULATOR_URL as string, process.env.PROJECT_KEY as string);
  if (kit) app.use(posthog({ kit }));
  app.get('/fail', (req, res) => {
    const userId = String(req.headers['x-posthog-distinct-id'] ?? 'anonymous');
    placeOrder(userId);
    res.send('unreachable');
  });
  if (kit) app.use(posthogErrorHandler());
  const server: Server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  console.log(`ready ${JSON.stringify({ port: (server.address() as AddressInfo).port })}`);
  process.once('SIGTERM', () => {
    const stats = codeVariablesStats();
    console.error(`  (${config}: ${stats.pauses} pauses, ${stats.snapshots} with variables)`);
    void (kit?.shutdown(2_000) ?? Promise.resolve()).then(() => process.exit(0));
  });
}

// ----- parent -----

async function main(): Promise<void> {
  const duration = Number(argValue('duration', '10'));
  const loopSeconds = Number(argValue('loop-seconds', '3'));
  const connections = Number(argValue('connections', '50'));
  const rounds = Number(argValue('rounds', '3'));
  const warmup = Number(argValue('warmup', '3'));

  console.error('thrown and caught, never captured (tight loop)');
  const loopRows: Array<Record<string, string | number>> = [];
  for (const config of LOOPS) {
    type LoopRun = {
      usPerThrow: number;
      pauses: number;
      snapshots: number;
      pauseMsPerSecond?: number;
      slowestPauseMs?: number;
    };
    const runs: LoopRun[] = [];
    for (let round = 0; round < rounds; round++) {
      const child = await startNode<LoopRun>(
        self,
        ['--loop', config, '--loop-seconds', String(loopSeconds)],
        { timeoutMs: (loopSeconds + 30) * 1_000 },
      );
      runs.push(child.info);
      await child.stop();
    }
    const row = {
      config,
      'µs per throw (median)': Number(median(runs.map((r) => r.usPerThrow)).toFixed(2)),
      'pauses (median)': median(runs.map((r) => r.pauses)),
      'with variables (median)': median(runs.map((r) => r.snapshots)),
      'ms paused per second (median)': Number(
        median(runs.map((r) => r.pauseMsPerSecond ?? Number.NaN)).toFixed(1),
      ),
      'slowest pause ms (median)': Number(
        median(runs.map((r) => r.slowestPauseMs ?? Number.NaN)).toFixed(1),
      ),
    };
    console.error(`  ${JSON.stringify(row)}`);
    loopRows.push(row);
  }

  console.error('thrown in a request, captured by the middleware (Express)');
  const emulator = await startNode<{ url: string; projectKey: string }>(
    here('./lib/emulator.ts'),
    [],
    { ipc: true },
  );
  const env = { EMULATOR_URL: emulator.info.url, PROJECT_KEY: emulator.info.projectKey };
  const samples: Record<string, Array<{ rps: number; p99: number; events: number }>> = {};
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const config of HTTP) {
        const app = await startNode<{ port: number }>(self, ['--app', config], { env });
        try {
          const url = `http://127.0.0.1:${app.info.port}/fail`;
          await load({ url, durationSeconds: warmup, connections });
          const before = await ask<{ events: number }>(emulator.proc, 'count');
          const result = await load({ url, durationSeconds: duration, connections });
          await app.stop(); // flushes what is queued
          const after = await ask<{ events: number }>(emulator.proc, 'count');
          const sample = {
            rps: result.requestsPerSecond,
            p99: result.p99Ms,
            events: after.events - before.events,
          };
          samples[config] = [...(samples[config] ?? []), sample];
          console.error(
            `  round ${round} ${config.padEnd(13)} ${Math.round(sample.rps)} req/s  p99 ${sample.p99} ms  ${result.total} requests, ${sample.events} events`,
          );
        } finally {
          await app.stop();
        }
      }
    }
  } finally {
    await emulator.stop();
  }
  const httpRows = HTTP.map((config) => {
    const list = samples[config] ?? [];
    const bare = samples.bare ?? [];
    return {
      config,
      'req/s (median)': Math.round(median(list.map((s) => s.rps))),
      'ratio to bare (median)': Number(
        median(list.map((s, i) => s.rps / (bare[i]?.rps ?? Number.NaN))).toFixed(3),
      ),
      'p99 ms (median)': median(list.map((s) => s.p99)),
      'events (median)': median(list.map((s) => s.events)),
    };
  });

  console.log('thrown and caught, never captured');
  console.table(loopRows);
  console.log('thrown in a request and captured');
  console.table(httpRows);
  mkdirSync(here('./results'), { recursive: true });
  const file = here(`./results/exceptions-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
        settings: { duration, loopSeconds, connections, rounds, warmup },
        loop: loopRows,
        http: httpRows,
        samples,
      },
      null,
      2,
    ),
  );
  console.error(`results written to ${file}`);
}

const loopArg = process.argv.indexOf('--loop');
const appArg = process.argv.indexOf('--app');
if (loopArg >= 0) {
  await loopChild(process.argv[loopArg + 1] as LoopConfig, Number(argValue('loop-seconds', '3')));
} else if (appArg >= 0) {
  await appChild(process.argv[appArg + 1] as HttpConfig);
} else {
  await main();
}
