// A CPU profile of each configuration under load: where per-request time goes.
//
//   node bench/profile.ts [--frameworks express,hono] [--configs context,work,posthog-work] [--duration 8]
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { summarise } from './lib/cpuprofile.ts';
import { load } from './lib/load.ts';
import { argValue, pinning, startNode } from './lib/process.ts';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const frameworks = argValue('frameworks', 'express,koa,hono,h3').split(',');
const configs = argValue('configs', 'context,work,posthog-work').split(',');
const duration = Number(argValue('duration', '8'));

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
  CLIENT_OPTIONS: argValue('client-options', '{}'),
};
try {
  for (const framework of frameworks) {
    for (const config of configs) {
      if (config.startsWith('posthog') && !['express', 'hono'].includes(framework)) continue;
      const dir = mkdtempSync(join(tmpdir(), 'posthog-kit-prof-'));
      const app = await startNode<{ port: number }>(here('./apps/server.ts'), [framework, config], {
        env,
        cpus: pin.app,
        nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
      });
      const url = `http://127.0.0.1:${app.info.port}/hello`;
      await load({ url, durationSeconds: 2 });
      const result = await load({ url, durationSeconds: duration });
      await app.stop();
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      if (!file) continue;
      const { areas, functions } = summarise(join(dir, file));
      console.log(`\n## ${framework} ${config}: ${Math.round(result.requestsPerSecond)} req/s`);
      console.log(`self time by area (%): ${JSON.stringify(areas)}`);
      for (const [name, pct] of functions) console.log(`  ${String(pct).padStart(5)}%  ${name}`);
    }
  }
} finally {
  await emulator.stop();
}
