// Time to the first local flag evaluation in a new process (kit created to first answer):
// with a warm shared cache (another process leads and has published the definitions to
// Redis) against none (the process fetches definitions itself). Warm twice: with `redisUrl`
// (the kit loads @keyv/redis and makes its own client: most of that time is node-redis
// starting), and with the app's own Redis Keyv, made before the clock starts, as `cache`.
// PostHog's latency is
// emulated on the definitions endpoint (`--latency`, ms), as a real PostHog is not on
// loopback; the warm case does not ask PostHog at all.
//
//   node bench/flags-cold-start.ts [--runs 10] [--latency 0,150,400]
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { flag, startEmulator } from '@posthog-kit/testing';
import { RedisServer } from '../test/redis-server.ts';
import { argValue, median } from './lib/process.ts';
import { save } from './lib/results.ts';

const runs = Number(argValue('runs', '10'));
const latencies = argValue('latency', '0,150,400').split(',').map(Number);
const WORKER = fileURLToPath(new URL('./lib/flags-process.ts', import.meta.url));

const emulator = await startEmulator({
  keepEvents: false,
  flags: [flag('bench-flag', { rollout: 50 })],
});
const redis = await RedisServer.start();

function run(config: Record<string, unknown>): Promise<{ ms: number; answered: boolean }> {
  const proc = spawn(process.execPath, [WORKER], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    env: { ...process.env, FLAGS_BENCH: JSON.stringify(config) },
  });
  const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error('no first answer within 30 s'));
    }, 30_000);
    lines.on('line', (line) => {
      if (!line.startsWith('first ')) return;
      clearTimeout(timer);
      resolve(JSON.parse(line.slice('first '.length)));
    });
  });
}

const base = {
  host: emulator.url,
  apiKey: emulator.projectApiKey,
  personalApiKey: emulator.personalApiKey,
  pollMs: 30_000,
};
const rows: string[] = [];
const results: Array<{
  latencyMs: number;
  case: string;
  medianMs: number;
  times: number[];
  fetches: number;
}> = [];
try {
  // The leader: keeps the shared copy warm for the whole run.
  const leader = spawn(process.execPath, [WORKER], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: {
      ...process.env,
      FLAGS_BENCH: JSON.stringify({ ...base, redisUrl: redis.url, mode: 'loop' }),
    },
  });
  for (const latency of latencies) {
    emulator.clearFaults();
    if (latency > 0) emulator.fault('definitions', { delayMs: latency });
    const cases = [
      { name: 'none (fetches itself)', warm: false, preload: false },
      { name: 'warm shared cache (Redis)', warm: true, preload: false },
      { name: "warm, the app's own Redis Keyv as `cache`", warm: true, preload: true },
    ];
    for (const { name, warm, preload } of cases) {
      const times: number[] = [];
      const fetchesBefore = emulator.definitionsFetchCount;
      for (let i = 0; i < runs; i++) {
        const first = await run({
          ...base,
          redisUrl: warm ? redis.url : '',
          mode: 'first',
          preload,
        });
        if (!first.answered) throw new Error('a process answered undefined');
        times.push(first.ms);
      }
      const fetches = emulator.definitionsFetchCount - fetchesBefore;
      const line = `| ${latency} ms | ${name} | ${median(times).toFixed(0)} ms | ${Math.min(...times).toFixed(0)}–${Math.max(...times).toFixed(0)} ms | ${fetches} |`;
      console.error(line);
      rows.push(line);
      results.push({ latencyMs: latency, case: name, medianMs: median(times), times, fetches });
    }
  }
  leader.send('stop');
} finally {
  emulator.clearFaults();
  await new Promise((r) => setTimeout(r, 500));
  await redis.stop();
  await emulator.close();
}
console.log(
  `\nTime from createPostHogKit to the first local answer in a new process, ${runs} processes each (${cpus().length} cores, Node ${process.versions.node}):\n`,
);
console.log('| PostHog latency | shared cache | median | range | definitions fetches |');
console.log('| --- | --- | --- | --- | --- |');
for (const row of rows) console.log(row);
save('flags-cold-start', { runs, latencies, rows: results });
