// Flags on the request path: CPU per request of reading 1 or 5 flags and capturing one
// event, with 1, 20 and 200 flag definitions (local evaluation), the kit against
// posthog-node's recommended pattern (`evaluateFlags(id)`, the reads, `capture({ flags:
// flags.onlyAccessed() })`) in the same run. Requests go through core's RequestTracker
// (the layer every adapter uses) in this process; the emulator runs in its own, so the
// CPU measured is the app's: the flag reads, the capture, posthog-node's batching.
//
//   node bench/flags-request.ts [--seconds 2] [--rounds 5] [--users 1000] [--definitions 1,20,200]
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  capture,
  createPostHogKit,
  featureEnabled,
  type PostHogKit,
  type RequestInfo,
  RequestTracker,
} from '@posthog-kit/core';
import { PostHog } from 'posthog-node';
import { argValue, median, startNode } from './lib/process.ts';
import { save } from './lib/results.ts';

const seconds = Number(argValue('seconds', '2'));
const rounds = Number(argValue('rounds', '5'));
const userCount = Number(argValue('users', '1000'));
const definitionCounts = argValue('definitions', '1,20,200').split(',').map(Number);
const READS = [1, 5];
const users = Array.from({ length: userCount }, (_, i) => `user-${i}`);
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
// The same batching for both clients (the kit's defaults), so only the flag work differs.
const batching = { flushAt: 100, flushInterval: 5_000, maxBatchSize: 500, maxQueueSize: 10_000 };

interface Emulator {
  url: string;
  projectKey: string;
  personalKey: string;
}

const infoFor = (user: string): RequestInfo => {
  const headers: Record<string, string> = {
    'x-posthog-distinct-id': user,
    'x-posthog-session-id': `s-${user}`,
    'user-agent': 'bench',
  };
  return {
    method: 'GET',
    url: 'http://app.test/things/1',
    path: '/things/1',
    ip: '203.0.113.9',
    raw: undefined,
    header: (name) => headers[name],
  };
};
const keys = (n: number) => Array.from({ length: n }, (_, i) => `flag-${i}`);

type Handler = (user: string) => Promise<unknown>;
interface Setup {
  handle: Handler;
  stop(): Promise<void>;
}

/** context: our middleware and one capture, no flag (the floor the flag cost is measured from). */
async function kitSetup(em: Emulator, reads: number): Promise<Setup> {
  const kit: PostHogKit = createPostHogKit({
    env: {},
    host: em.url,
    apiKey: em.projectKey,
    personalApiKey: em.personalKey,
    errorMode: 'ignore',
    shutdownHooks: false,
  });
  await kit.client?.waitForLocalEvaluationReady(10_000);
  const tracker = new RequestTracker({ kit });
  const flagKeys = keys(reads);
  return {
    async handle(user) {
      const request = tracker.start(infoFor(user));
      await tracker.run(request, async () => {
        for (const key of flagKeys) await featureEnabled(key);
        capture('bench_event', { properties: { n: 1 } });
      });
      tracker.end(request, 200);
    },
    stop: () => kit.shutdown(2_000),
  };
}

/** posthog-node as its docs say: one snapshot per request, the reads, capture with onlyAccessed(). */
async function nodeSetup(em: Emulator, reads: number): Promise<Setup> {
  const client = new PostHog(em.projectKey, {
    host: em.url,
    secretKey: em.personalKey,
    disableGeoip: true,
    ...batching,
  });
  await client.waitForLocalEvaluationReady(10_000);
  const flagKeys = keys(reads);
  return {
    async handle(user) {
      const flags = await client.evaluateFlags(user);
      for (const key of flagKeys) flags.isEnabled(key);
      client.capture({ distinctId: user, event: 'bench_event', flags: flags.onlyAccessed() });
    },
    stop: () => client.shutdown(2_000),
  };
}

/** CPU µs per request over `seconds` of back-to-back requests (1,000 rotating users). */
async function cpuPerRequest(handle: Handler): Promise<{ cpuUs: number; rps: number }> {
  let n = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) await handle(users[(n + i) % users.length] as string);
    n += 100;
  }
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  return { cpuUs: (cpu.user + cpu.system) / n, rps: (n / wall) * 1000 };
}

type Row = { definitions: number; reads: number; impl: 'kit' | 'posthog-node' };
const rows: Row[] = [];
for (const definitions of definitionCounts)
  for (const reads of READS)
    for (const impl of ['kit', 'posthog-node'] as const) rows.push({ definitions, reads, impl });
const label = (r: Row) => `${r.definitions}/${r.reads}/${r.impl}`;
const results: Record<string, number[]> = {};

for (const definitions of definitionCounts) {
  const emulator = await startNode<Emulator>(here('./lib/flags-emulator.ts'), [], {
    env: { FLAG_COUNT: String(definitions) },
  });
  try {
    for (let round = 1; round <= rounds; round++) {
      // Rotated each round, so neither side always runs first.
      const mine = rows.filter((r) => r.definitions === definitions);
      const order = round % 2 === 0 ? mine : [...mine].reverse();
      for (const row of order) {
        const setup =
          row.impl === 'kit'
            ? await kitSetup(emulator.info, row.reads)
            : await nodeSetup(emulator.info, row.reads);
        try {
          await cpuPerRequest(setup.handle); // warm-up: the JIT, the memo, the exposure dedupe
          const { cpuUs } = await cpuPerRequest(setup.handle);
          results[label(row)] = [...(results[label(row)] ?? []), cpuUs];
          console.error(
            `round ${round} ${label(row).padEnd(24)} ${cpuUs.toFixed(1)} µs CPU/request`,
          );
        } finally {
          await setup.stop();
        }
      }
    }
  } finally {
    await emulator.stop();
  }
}

const cpu = (r: Row) => median(results[label(r)] ?? [Number.NaN]);
console.log(
  `\nCPU per request (µs), flags read + one capture, local evaluation, ${userCount} users, median of ${rounds} × ${seconds} s (${cpus().length} cores, Node ${process.versions.node}):\n`,
);
console.log(
  '| definitions | flags read | kit | posthog-node pattern | kit / posthog-node | kit vs 1 definition |',
);
console.log('| --- | --- | --- | --- | --- | --- |');
for (const definitions of definitionCounts) {
  for (const reads of READS) {
    const ours = cpu({ definitions, reads, impl: 'kit' });
    const theirs = cpu({ definitions, reads, impl: 'posthog-node' });
    const one = cpu({ definitions: definitionCounts[0] as number, reads, impl: 'kit' });
    console.log(
      `| ${definitions} | ${reads} | ${ours.toFixed(1)} | ${theirs.toFixed(1)} | ${(ours / theirs).toFixed(3)} | ${(ours / one).toFixed(2)}× |`,
    );
  }
}
save('flags-request', { seconds, rounds, userCount, results });
