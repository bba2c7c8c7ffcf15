// A CPU profile of each configuration under load: where per-request time goes. The profile
// covers the measured load only (started after the warm-up through the app's stats port), so
// the process's start-up and its first, unoptimised requests are not in it.
//
//   node bench/profile.ts [--frameworks express,hono] [--configs context,work,posthog-work] [--duration 8]
import { mkdtempSync, writeFileSync } from 'node:fs';
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
      if (
        config.startsWith('posthog') &&
        !['express', 'hono', 'nestjs', 'nestjs-fastify'].includes(framework)
      )
        continue;
      const app = await startNode<{ port: number; statsPort: number }>(
        here('./apps/server.ts'),
        [framework, config],
        { env: { ...env, STATS: '1' }, cpus: pin.app },
      );
      const url = `http://127.0.0.1:${app.info.port}/hello`;
      const stats = `http://127.0.0.1:${app.info.statsPort}`;
      await load({ url, durationSeconds: 2 });
      await fetch(`${stats}/profile/start`);
      const result = await load({ url, durationSeconds: duration });
      const profile = await (await fetch(`${stats}/profile/stop`)).text();
      await app.stop();
      const file = join(mkdtempSync(join(tmpdir(), 'posthog-kit-prof-')), 'app.cpuprofile');
      writeFileSync(file, profile);
      const { areas, functions } = summarise(file);
      console.log(
        `\n## ${framework} ${config}: ${Math.round(result.requestsPerSecond)} req/s (${file})`,
      );
      console.log(`self time by area (%): ${JSON.stringify(areas)}`);
      for (const [name, pct] of functions) console.log(`  ${String(pct).padStart(5)}%  ${name}`);
    }
  }
} finally {
  await emulator.stop();
}
