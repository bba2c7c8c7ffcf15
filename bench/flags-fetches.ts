// Flag definitions fetches for N = 1, 4, 8 processes over a fixed window: each process
// polling by itself (posthog-node alone, or the kit without a shared store) against the
// kit sharing definitions through Redis (one leader fetches; with 304s it only confirms).
//
//   node bench/flags-fetches.ts [--window 30] [--poll 1] [--processes 1,4,8]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { flag, startEmulator } from '@posthog-kit/testing';
import { RedisServer } from '../test/redis-server.ts';
import { argValue } from './lib/process.ts';
import { save } from './lib/results.ts';

const windowS = Number(argValue('window', '30'));
const pollS = Number(argValue('poll', '1'));
const counts = argValue('processes', '1,4,8').split(',').map(Number);
const WORKER = fileURLToPath(new URL('./lib/flags-process.ts', import.meta.url));

const emulator = await startEmulator({
  keepEvents: false,
  flags: [flag('bench-flag', { rollout: 50 })],
});
const redis = await RedisServer.start();
const rows: string[] = [];
const results: Array<{
  processes: number;
  shared: boolean;
  fetches: number;
  served: number;
  notModified: number;
}> = [];
try {
  for (const n of counts) {
    for (const shared of [false, true]) {
      emulator.reset();
      const config = {
        host: emulator.url,
        apiKey: emulator.projectApiKey,
        personalApiKey: emulator.personalApiKey,
        redisUrl: shared ? redis.url : '',
        pollMs: pollS * 1000,
        mode: 'loop',
      };
      const procs = Array.from({ length: n }, () =>
        spawn(process.execPath, [WORKER], {
          stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
          env: {
            ...process.env,
            FLAGS_BENCH: JSON.stringify({ ...config, prefix: `bench:${n}:${Date.now()}` }),
          },
        }),
      );
      await new Promise((r) => setTimeout(r, windowS * 1000));
      const served = emulator.definitionsServedCount;
      const notModified = emulator.definitionsNotModifiedCount;
      const total = emulator.definitionsFetchCount;
      await Promise.all(
        procs.map(async (p) => {
          const exited = once(p, 'exit');
          p.send('stop');
          const timer = setTimeout(() => p.kill('SIGKILL'), 5_000);
          await exited;
          clearTimeout(timer);
        }),
      );
      const line = `| ${n} | ${shared ? 'shared (Redis)' : 'each polls alone'} | ${total} | ${served} | ${notModified} |`;
      console.error(line);
      rows.push(line);
      results.push({ processes: n, shared, fetches: total, served, notModified });
      await redis.stop();
      await redis.start(); // empty for the next run
    }
  }
} finally {
  await redis.stop();
  await emulator.close();
}
console.log(
  `\nDefinitions fetches in ${windowS} s, polling every ${pollS} s (${cpus().length} cores, Node ${process.versions.node}):\n`,
);
console.log('| processes | definitions | fetches | of them 200 | of them 304 |');
console.log('| --- | --- | --- | --- | --- |');
for (const row of rows) console.log(row);
save('flags-fetches', { windowS, pollS, rows: results });
