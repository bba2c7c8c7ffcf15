// `node src/demo.ts [sqlite|redis] [processes]`: the local PostHog emulator, then that many
// application processes sharing flag definitions through the store. Prints how many times
// PostHog was asked for definitions (without a shared store, each process polls alone).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { flag, startEmulator } from '@posthog-kit/testing';

const store = process.argv[2] ?? 'sqlite';
const processes = Number(process.argv[3] ?? 3);
const redisUrl = process.env.REDIS_URL ?? process.env.POSTHOG_REDIS_URL;
if (store === 'redis' && !redisUrl) {
  console.error('set REDIS_URL (for example redis://127.0.0.1:6379) to run the Redis demo');
  process.exit(2);
}

const emulator = await startEmulator({ flags: [flag('new-checkout', { rollout: 50 })] });
const dir = mkdtempSync(join(tmpdir(), 'posthog-kit-keyv-'));
const env = {
  ...process.env,
  STORE: store,
  REDIS_URL: redisUrl ?? '',
  SQLITE_FILE: join(dir, 'flags.sqlite'),
  RUN_MS: '3000',
  POSTHOG_HOST: emulator.url,
  POSTHOG_PROJECT_API_KEY: emulator.projectApiKey,
  POSTHOG_PERSONAL_API_KEY: emulator.personalApiKey,
  POSTHOG_POLL_INTERVAL: '0.5',
  POSTHOG_FLAG_DEFINITIONS_LOCK_TTL: '1',
  POSTHOG_FLAG_DEFINITIONS_CACHE_PREFIX: `example:${process.pid}`,
};
const app = fileURLToPath(new URL('./app.ts', import.meta.url));
console.log(
  `${processes} processes, 3 s each, polling every 0.5 s, definitions shared through ${store}\n`,
);
try {
  const runs = await Promise.all(
    Array.from({ length: processes }, () =>
      promisify(execFile)(process.execPath, [app], { env, timeout: 30_000 }),
    ),
  );
  for (const { stdout } of runs) console.log(`  ${stdout.trim()}`);
  console.log(
    `\nPostHog was asked for flag definitions ${emulator.definitionsFetchCount} time(s); alone, each process would have asked about 6 times.`,
  );
} finally {
  await emulator.close();
  rmSync(dir, { recursive: true, force: true });
}
