// One application process for the flag benchmarks, on the built @posthog-kit/core.
//   FLAGS_BENCH='{"host","apiKey","personalApiKey","redisUrl"?,"pollMs","mode"}'
//   mode "loop":  evaluate a flag every 20 ms until told `stop` (IPC); polls as configured.
//   mode "first": print `first <ms>` (kit created to first local answer), then exit;
//   with "preload", the app's own Redis Keyv (made before the clock starts) is the `cache`,
//   as in an app that already uses Redis; otherwise `redisUrl` (the kit makes its client).

import type { Keyv } from '@keyv/redis';
import { createPostHogKit } from '@posthog-kit/core';

interface Config {
  host: string;
  apiKey: string;
  personalApiKey: string;
  redisUrl?: string;
  pollMs: number;
  mode: 'loop' | 'first';
  preload?: boolean;
}

const config = JSON.parse(process.env.FLAGS_BENCH ?? '{}') as Config;
let appCache: Keyv | undefined;
if (config.preload && config.redisUrl) {
  const { default: KeyvRedis, Keyv } = await import('@keyv/redis');
  appCache = new Keyv(new KeyvRedis(config.redisUrl), { namespace: undefined });
}
const t0 = performance.now();
const kit = createPostHogKit({
  env: {},
  apiKey: config.apiKey,
  host: config.host,
  personalApiKey: config.personalApiKey,
  redisUrl: appCache ? undefined : config.redisUrl || undefined,
  cache: appCache,
  pollIntervalMs: config.pollMs,
  flagDefinitionsLockTtlMs: Math.max(5_000, 2 * config.pollMs),
  flagDefinitionsCacheTtlMs: Math.max(60_000, 2 * config.pollMs),
  errorMode: 'ignore',
});
const ask = () =>
  kit.featureEnabled('bench-flag', {
    distinctId: `user-${Math.floor(Math.random() * 1000)}`,
    onlyEvaluateLocally: true,
    sendFeatureFlagEvents: false,
  });

if (config.mode === 'first') {
  const answer = await kit.getFeatureFlag('bench-flag', {
    distinctId: 'first-user',
    onlyEvaluateLocally: true,
    sendFeatureFlagEvents: false,
  });
  const ms = performance.now() - t0;
  console.log(`first ${JSON.stringify({ ms, answered: answer !== undefined })}`);
  await kit.shutdown(2_000);
  await appCache?.disconnect();
  if (process.connected) process.disconnect();
} else {
  let stop = false;
  process.on('message', (m) => {
    if (m === 'stop') stop = true;
  });
  console.log('ready {}');
  const deadline = Date.now() + 10 * 60_000;
  while (!stop && Date.now() < deadline) {
    await ask();
    await new Promise((r) => setTimeout(r, 20));
  }
  await kit.shutdown(2_000);
  await appCache?.disconnect();
  if (process.connected) process.disconnect();
}
