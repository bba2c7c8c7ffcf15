// A fleet on one machine: N processes (64) sharing flag definitions through one Redis, then
// through a local 3-node Redis Cluster, polling every second, for a bounded window (30 s),
// with the emulator as PostHog, all on loopback. Per store:
//   1. steady state and a killed leader: definitions fetches per poll interval (average,
//      longest run without one), Redis commands per process per second (INFO commandstats),
//      the leader killed with SIGKILL half-way (time to the next leader), wrong or missing
//      answers meanwhile (each process checks every answer against posthog-node's);
//   2. a cold start against a warm store: every process started at once while a relay
//      (posthog-kit-relay) holds the lease, with the personal key and store-only: requests
//      the restarted processes made to PostHog (each counts its own) until all have answered,
//      and what a store-only fleet then costs Redis.
//
//   node bench/fleet.ts [--processes 64] [--seconds 30] [--poll 1] [--stores redis,cluster]
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpus } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { flag, startEmulator } from '@posthog-kit/testing';
import { PostHog } from 'posthog-node';
import {
  commandStats,
  RedisCluster,
  RedisServer,
  redisCommand,
  redisInfo,
} from '../test/redis-server.ts';
import { argValue, median } from './lib/process.ts';
import { save } from './lib/results.ts';

const processes = Number(argValue('processes', '64'));
const seconds = Number(argValue('seconds', '30'));
const pollS = Number(argValue('poll', '1'));
const stores = argValue('stores', 'redis,cluster').split(',');
const WORKER = fileURLToPath(new URL('./lib/fleet-process.ts', import.meta.url));
const RELAY = fileURLToPath(new URL('../packages/core/dist/relay.mjs', import.meta.url));
// The kit's defaults for this poll interval: lease max(5 s, 2 × poll), shared copy max(60 s, 2 × poll).
const lockTtlMs = Math.max(5_000, 2 * pollS * 1000);
const BOUND_MS = 10 * 60_000;
const benchDeadline = Date.now() + BOUND_MS;

const FLAGS = [
  flag('everyone', { rollout: 100 }),
  flag('half', { rollout: 50 }),
  flag('pro-only', { conditions: [{ properties: [{ key: 'plan', value: 'pro' }] }] }),
  flag('colour', { variants: { red: 50, blue: 50 }, payloads: { red: { hex: '#f00' } } }),
];
const USERS = Array.from({ length: 200 }, (_, i) => `user-${i}`);
const person = Object.fromEntries(USERS.map((u, i) => [u, { plan: i % 3 === 0 ? 'pro' : 'free' }]));

const definitionRequests: number[] = [];
const flagRequests: number[] = [];
const emulator = await startEmulator({
  keepEvents: false,
  flags: FLAGS,
  onRequest: (r) => {
    if (r.endpoint === 'definitions') definitionRequests.push(r.timestamp);
    if (r.endpoint === 'flags') flagRequests.push(r.timestamp);
  },
});

/** What posthog-node answers, evaluated locally: the answers every process must give. */
async function expectedAnswers() {
  const client = new PostHog(emulator.projectApiKey, {
    host: emulator.url,
    secretKey: emulator.personalApiKey,
    featureFlagsPollingInterval: 600_000,
    fetchRetryCount: 0,
  });
  const out: Record<string, Record<string, boolean | string | undefined>> = {};
  for (const user of USERS) {
    const row: Record<string, boolean | string | undefined> = {};
    for (const f of FLAGS) {
      const r = await client.getFeatureFlagResult(f.key, user, {
        personProperties: person[user],
        onlyEvaluateLocally: true,
        sendFeatureFlagEvents: false,
      });
      row[f.key] = r === undefined ? undefined : r.enabled ? (r.variant ?? true) : false;
    }
    out[user] = row;
  }
  await client.shutdown();
  return out;
}

interface Status {
  pid: number;
  leader: boolean;
  source: string;
  firstAnswerMs: number | undefined;
  evaluations: number;
  wrong: number;
  missing: number;
  /** Requests this process made to PostHog's flag endpoints. */
  requests: number;
}

// Every child this bench starts, killed when it ends however it ends: a failed run leaves no
// process behind to load the machine under the next one.
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => process.exit(130));
}
function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

class Worker {
  readonly proc: ChildProcess;
  status: Status | undefined;
  final: Status | undefined;
  readonly startedAt = Date.now();
  /** When it first reported leading. */
  ledAt: number | undefined;
  readonly exited: Promise<unknown>;

  constructor(config: Record<string, unknown>) {
    this.proc = track(
      spawn(process.execPath, [WORKER], {
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        env: { ...process.env, FLEET: JSON.stringify(config) },
      }),
    );
    this.exited = once(this.proc, 'exit');
    this.proc.on('message', (m: { type: string } & Status) => {
      if (m.type === 'final') this.final = m;
      this.status = m;
      if (m.leader && this.ledAt === undefined) this.ledAt = Date.now();
    });
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    if (this.proc.connected) this.proc.send('stop');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 8_000);
    await this.exited;
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Math.min(Date.now() + timeoutMs, benchDeadline);
  while (Date.now() < deadline) {
    if (check()) return true;
    await sleep(20);
  }
  return check();
}

interface StoreUnderTest {
  name: string;
  url: string;
  ports: number[];
  stop(): Promise<void>;
}

async function startStore(name: string): Promise<StoreUnderTest> {
  if (name === 'cluster') {
    const cluster = await RedisCluster.start();
    return {
      name: 'Redis Cluster (3 masters)',
      url: cluster.url,
      ports: cluster.nodes.map((n) => n.port),
      stop: () => cluster.stop(),
    };
  }
  const server = await RedisServer.start();
  return { name: 'Redis', url: server.url, ports: [server.port], stop: () => server.stop() };
}

/** Commands every node ran since its last reset, summed, without the bench's own. */
async function commands(ports: number[]): Promise<Record<string, number>> {
  const total: Record<string, number> = {};
  for (const port of ports) {
    for (const [name, calls] of Object.entries(await commandStats(port))) {
      if (name === 'info' || name.startsWith('config')) continue;
      total[name] = (total[name] ?? 0) + calls;
    }
  }
  return total;
}

/** Bytes Redis sent to and received from its clients since the last reset, summed over nodes. */
async function netBytes(ports: number[]): Promise<{ out: number; in: number }> {
  let out = 0;
  let inBytes = 0;
  for (const port of ports) {
    const stats = await redisInfo(port, 'stats');
    out += Number(stats.get('total_net_output_bytes') ?? 0);
    inBytes += Number(stats.get('total_net_input_bytes') ?? 0);
  }
  return { out, in: inBytes };
}

async function resetStats(ports: number[]): Promise<void> {
  for (const port of ports) await redisCommand(port, ['CONFIG', 'RESETSTAT']);
}

/** Size of the shared definitions entry (the value every follower reads each poll). */
async function entryBytes(ports: number[], prefix: string): Promise<number> {
  for (const port of ports) {
    const keys = await redisCommand(port, ['KEYS', `${prefix}:*:data`]);
    if (Array.isArray(keys) && typeof keys[0] === 'string') {
      return Number(await redisCommand(port, ['STRLEN', keys[0]]));
    }
  }
  return 0;
}

function startRelay(env: Record<string, string>): Promise<{ proc: ChildProcess; url: string }> {
  const proc = track(
    spawn(process.execPath, [RELAY, '--port', '0'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { PATH: process.env.PATH ?? '', ...env },
    }),
  );
  const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('relay not ready in 20 s')), 20_000);
    lines.on('line', (line) => {
      if (!line.startsWith('ready ')) return;
      clearTimeout(timer);
      resolve({ proc, url: (JSON.parse(line.slice(6)) as { url: string }).url });
    });
  });
}

const rows: Array<Record<string, unknown>> = [];
const expected = await expectedAnswers();
definitionRequests.length = 0;

for (const storeName of stores) {
  const store = await startStore(storeName);
  const prefix = `fleet:${storeName}:${Date.now()}`;
  const config = (mode: 'poll' | 'store') => ({
    host: emulator.url,
    apiKey: emulator.projectApiKey,
    personalApiKey: emulator.personalApiKey,
    redisUrl: store.url,
    pollMs: pollS * 1000,
    mode,
    prefix,
    expected,
    person,
  });
  try {
    // ----- 1. steady state, and the leader killed half-way -----
    const spawnedAt = Date.now();
    const fleet = Array.from({ length: processes }, () => new Worker(config('poll')));
    const allAnswered = () => fleet.every((w) => w.status?.firstAnswerMs !== undefined);
    if (!(await until(allAnswered, 60_000))) throw new Error('not every process answered in 60 s');
    const startupMs = Date.now() - spawnedAt;
    const startupFetches = definitionRequests.length;
    await sleep(pollS * 2000);
    await resetStats(store.ports);
    const t0 = Date.now();
    const fetchesBefore = definitionRequests.length;
    let killedAt = 0;
    let takeoverMs = Number.NaN;
    let killed: Worker | undefined;
    while (Date.now() - t0 < seconds * 1000 && Date.now() < benchDeadline) {
      if (!killed && Date.now() - t0 >= (seconds * 1000) / 2) {
        killed = fleet.find((w) => w.status?.leader && w.alive);
        if (!killed) throw new Error('no leader to kill');
        killedAt = Date.now();
        killed.proc.kill('SIGKILL');
        await killed.exited;
      }
      if (killed && Number.isNaN(takeoverMs)) {
        const next = fleet.find((w) => w !== killed && w.status?.leader);
        if (next) takeoverMs = Date.now() - killedAt;
      }
      await sleep(20);
    }
    const windowMs = Date.now() - t0;
    const stats = await commands(store.ports);
    const bytesMoved = await netBytes(store.ports);
    const bytes = await entryBytes(store.ports, prefix);
    const fetches = definitionRequests.slice(fetchesBefore).filter((t) => t >= t0);
    // Fetches per poll interval, and the longest time without one.
    const buckets = Array.from({ length: Math.floor(windowMs / (pollS * 1000)) }, () => 0);
    for (const t of fetches) {
      const i = Math.floor((t - t0) / (pollS * 1000));
      if (i < buckets.length) buckets[i] = (buckets[i] ?? 0) + 1;
    }
    let longestRun = 0;
    let run = 0;
    for (const b of buckets) {
      run = b === 0 ? run + 1 : 0;
      longestRun = Math.max(longestRun, run);
    }
    let longestGapMs = 0;
    let last = t0;
    for (const t of [...fetches, t0 + windowMs]) {
      longestGapMs = Math.max(longestGapMs, t - last);
      last = t;
    }
    await Promise.all(fleet.map((w) => w.stop()));
    const survivors = fleet.filter((w) => w !== killed);
    const wrong = survivors.reduce((n, w) => n + (w.final?.wrong ?? w.status?.wrong ?? 0), 0);
    const missing = survivors.reduce((n, w) => n + (w.final?.missing ?? w.status?.missing ?? 0), 0);
    const evaluations = survivors.reduce(
      (n, w) => n + (w.final?.evaluations ?? w.status?.evaluations ?? 0),
      0,
    );
    // Process-seconds in the window: the killed leader counts until the kill.
    const processSeconds = ((processes - 1) * windowMs + (killedAt - t0)) / 1000;
    // commandstats also counts the commands a script runs: each lease script (eval) runs two
    // (GET, then PEXPIRE, SET or PTTL). Round trips are what clients send.
    const operations = Object.values(stats).reduce((a, b) => a + b, 0);
    const roundTrips = operations - 2 * ((stats.eval ?? 0) + (stats.evalsha ?? 0));
    const firstAnswers = fleet.map((w) => w.status?.firstAnswerMs ?? Number.NaN);

    // ----- 2. cold start against a warm store, a relay holding the lease -----
    const relay = await startRelay({
      POSTHOG_PROJECT_API_KEY: emulator.projectApiKey,
      POSTHOG_PERSONAL_API_KEY: emulator.personalApiKey,
      POSTHOG_HOST: emulator.url,
      POSTHOG_REDIS_URL: store.url,
      POSTHOG_FLAG_DEFINITIONS_CACHE_PREFIX: prefix,
      // The readers' cadence: it keeps the copy confirmed, as the fleet's leader did.
      POSTHOG_POLL_INTERVAL: String(pollS),
    });
    const healthy = async () => (await fetch(relay.url)).status === 200;
    const relayDeadline = Date.now() + 20_000;
    while (!(await healthy())) {
      if (Date.now() > relayDeadline) throw new Error('relay not healthy in 20 s');
      await sleep(100);
    }
    const cold: Record<string, { requests: number; medianMs: number; maxMs: number }> = {};
    let storeOnly = { roundTrips: 0, bytesOut: 0, bytesIn: 0 };
    for (const mode of ['poll', 'store'] as const) {
      const restarted = Array.from({ length: processes }, () => new Worker(config(mode)));
      const answered = () => restarted.every((w) => w.status?.firstAnswerMs !== undefined);
      if (!(await until(answered, 60_000))) {
        const silent = restarted.filter((w) => w.status?.firstAnswerMs === undefined);
        throw new Error(
          `cold start (${mode}): ${silent.length} of ${processes} did not answer in 60 s: ${JSON.stringify(silent.slice(0, 3).map((w) => w.status))}`,
        );
      }
      const times = restarted.map((w) => w.status?.firstAnswerMs ?? Number.NaN);
      if (mode === 'store') {
        // What a store-only fleet costs Redis once it runs: 10 s of it.
        await resetStats(store.ports);
        const from = Date.now();
        await sleep(10_000);
        const s = await commands(store.ports);
        const net = await netBytes(store.ports);
        const ps = (processes * (Date.now() - from)) / 1000;
        const ops = Object.values(s).reduce((a, b) => a + b, 0);
        storeOnly = {
          roundTrips: Number(((ops - 2 * ((s.eval ?? 0) + (s.evalsha ?? 0))) / ps).toFixed(2)),
          bytesOut: Math.round(net.out / ps),
          bytesIn: Math.round(net.in / ps),
        };
      }
      await Promise.all(restarted.map((w) => w.stop()));
      // Each process counts its own requests: the relay's polls are not among them.
      const requests = restarted.reduce(
        (n, w) => n + (w.final?.requests ?? w.status?.requests ?? 0),
        0,
      );
      cold[mode] = {
        requests,
        medianMs: Math.round(median(times)),
        maxMs: Math.round(Math.max(...times)),
      };
    }
    relay.proc.kill('SIGTERM');
    await once(relay.proc, 'exit');

    const row = {
      store: store.name,
      processes,
      pollS,
      windowS: Math.round(windowMs / 1000),
      lockTtlMs,
      startupMs,
      startupFetches,
      firstAnswerMedianMs: Math.round(median(firstAnswers)),
      fetches: fetches.length,
      fetchesPerPoll: Number((fetches.length / buckets.length).toFixed(2)),
      maxFetchesPerPoll: Math.max(...buckets),
      pollsWithoutFetch: buckets.filter((b) => b === 0).length,
      longestRunWithoutFetchS: longestRun * pollS,
      longestGapMs,
      takeoverMs,
      evaluations,
      wrong,
      missing,
      commandsPerProcessPerS: Number((roundTrips / processSeconds).toFixed(2)),
      operationsPerProcessPerS: Number((operations / processSeconds).toFixed(2)),
      bytesOutPerProcessPerS: Math.round(bytesMoved.out / processSeconds),
      bytesInPerProcessPerS: Math.round(bytesMoved.in / processSeconds),
      commands: stats,
      entryBytes: bytes,
      coldStart: cold,
      storeOnly,
    };
    rows.push(row);
    console.error(JSON.stringify(row));
  } finally {
    for (const child of children) child.kill('SIGKILL');
    await store.stop();
  }
}
await emulator.close();

console.log(
  `\nFleet: ${processes} processes, poll ${pollS} s, lease ${lockTtlMs / 1000} s, ${seconds} s window (${cpus().length} cores, Node ${process.versions.node}):\n`,
);
console.log(
  '| store | definitions fetches per poll (avg / max) | longest run of polls without a fetch | leader killed: next leader after | wrong / missing answers | Redis round trips (operations) per process per second | bytes per process per second (from / to Redis) | cold start, key: PostHog requests (first answer median / max) | cold start, store-only |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  const cold = r.coldStart as Record<string, { requests: number; medianMs: number; maxMs: number }>;
  const c = (m: string) => `${cold[m]?.requests} (${cold[m]?.medianMs} / ${cold[m]?.maxMs} ms)`;
  console.log(
    `| ${r.store} | ${r.fetchesPerPoll} / ${r.maxFetchesPerPoll} | ${r.longestRunWithoutFetchS} s (gap ${r.longestGapMs} ms; lease ${lockTtlMs / 1000} s) | ${r.takeoverMs} ms | ${r.wrong} / ${r.missing} of ${r.evaluations} | ${r.commandsPerProcessPerS} (${r.operationsPerProcessPerS}) | ${r.bytesOutPerProcessPerS} / ${r.bytesInPerProcessPerS} | ${c('poll')} | ${c('store')} |`,
  );
}
for (const r of rows) {
  const so = r.storeOnly as { roundTrips: number; bytesOut: number; bytesIn: number };
  console.log(
    `\n${r.store}, a store-only fleet running: ${so.roundTrips} round trips and ${so.bytesOut} / ${so.bytesIn} bytes (from / to Redis) per process per second`,
  );
}
for (const r of rows) {
  console.log(
    `\n${r.store}: commands in the window ${JSON.stringify(r.commands)}, entry ${r.entryBytes} bytes`,
  );
}
save('fleet', { processes, seconds, pollS, lockTtlMs, rows });
