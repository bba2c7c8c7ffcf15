// 1,000,000 requests through each adapter (one capture and one local flag evaluation per
// request, 1,000 distinct users): heap after GC and the process's timers, sockets and
// listeners at checkpoints. Flat means: final heap within 5% of the baseline at 100k.
//
//   node bench/memory.ts [--frameworks express,koa,hono,h3] [--requests 1000000] [--config work]
import { fileURLToPath } from 'node:url';
import { load } from './lib/load.ts';
import { argValue, pinning, startNode } from './lib/process.ts';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const frameworks = argValue('frameworks', 'express,koa,hono,h3').split(',');
const total = Number(argValue('requests', '1000000'));
const config = argValue('config', 'work');
const checkpoints = [0.1, 0.4, 0.7, 1].map((f) => Math.round(total * f));

interface Stats {
  heapUsed: number;
  resources: Record<string, number>;
  processListeners: number;
}

const pin = pinning();
const emulator = await startNode<{ url: string; projectKey: string; personalKey: string }>(
  here('./lib/emulator.ts'),
  [],
  { ipc: true, cpus: pin.others },
);
const env = {
  EMULATOR_URL: emulator.info.url,
  PROJECT_KEY: emulator.info.projectKey,
  PERSONAL_KEY: emulator.info.personalKey,
  STATS: '1',
};
const rows: Array<Record<string, string | number>> = [];
try {
  for (const framework of frameworks) {
    const app = await startNode<{ port: number; statsPort: number }>(
      here('./apps/server.ts'),
      [framework, config],
      {
        env,
        cpus: pin.app,
        nodeArgs: ['--expose-gc'],
      },
    );
    try {
      const url = `http://127.0.0.1:${app.info.port}/hello`;
      const stats = async () =>
        (await (await fetch(`http://127.0.0.1:${app.info.statsPort}/`)).json()) as Stats;
      let sent = 0;
      let baseline: Stats | undefined;
      for (const checkpoint of checkpoints) {
        const result = await load({ url, amount: checkpoint - sent, connections: 50 });
        sent = checkpoint;
        // Let posthog-node's interval flush drain what is queued before measuring.
        await new Promise((r) => setTimeout(r, 6_000));
        const s = await stats();
        baseline ??= s;
        const growth = ((s.heapUsed - baseline.heapUsed) / baseline.heapUsed) * 100;
        const row = {
          framework,
          requests: checkpoint,
          'req/s': Math.round(result.requestsPerSecond),
          'heap MB': Number((s.heapUsed / 1e6).toFixed(2)),
          'vs 100k': `${growth >= 0 ? '+' : ''}${growth.toFixed(1)}%`,
          timers: s.resources.Timeout ?? 0,
          sockets: (s.resources.TCPSocketWrap ?? 0) + (s.resources.TCPServerWrap ?? 0),
          'process listeners': s.processListeners,
          errors: result.errors + result.non2xx,
        };
        rows.push(row);
        console.error(JSON.stringify(row));
      }
    } finally {
      await app.stop();
    }
  }
} finally {
  await emulator.stop();
}
console.table(rows);
