// `featureEnabled` with local evaluation, in one process: posthog-node's own call
// (`getFeatureFlagResult`), the kit's `featureEnabled` (the wrapper's cost), and the kit
// with the flag result cache on (in memory, and on Redis). The emulator runs in its own
// process; 1,000 users, so after the first round the result cache answers from hits.
//
//   node bench/flags-eval.ts [--seconds 3] [--rounds 3] [--users 1000]
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createPostHogKit, type PostHogKitOptions } from '@posthog-kit/core';
import { PostHog } from 'posthog-node';
import { RedisServer } from '../test/redis-server.ts';
import { argValue, median, startNode } from './lib/process.ts';
import { save } from './lib/results.ts';

const seconds = Number(argValue('seconds', '3'));
const rounds = Number(argValue('rounds', '3'));
const userCount = Number(argValue('users', '1000'));
const users = Array.from({ length: userCount }, (_, i) => `user-${i}`);
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

const emulator = await startNode<{ url: string; projectKey: string; personalKey: string }>(
  here('./lib/emulator.ts'),
  [],
  { ipc: true },
);
const redis = await RedisServer.start();

/** Calls `fn` back to back for `seconds`; returns calls per second. */
async function opsPerSecond(fn: (user: string) => Promise<unknown>): Promise<number> {
  let n = 0;
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) await fn(users[(n + i) % users.length] as string);
    n += 100;
  }
  return n / seconds;
}

const base = {
  env: {},
  apiKey: emulator.info.projectKey,
  host: emulator.info.url,
  personalApiKey: emulator.info.personalKey,
  errorMode: 'ignore' as const,
};
const options = { personProperties: { plan: 'pro' } };

type Variant = {
  name: string;
  setup: () => Promise<{ call: (u: string) => Promise<unknown>; stop: () => Promise<void> }>;
};
const kitVariant = (name: string, extra: PostHogKitOptions): Variant => ({
  name,
  async setup() {
    const kit = createPostHogKit({ ...base, ...extra });
    await kit.featureEnabled('bench-flag', { distinctId: 'warm', onlyEvaluateLocally: true });
    return {
      call: (u) => kit.featureEnabled('bench-flag', { distinctId: u, ...options }),
      stop: () => kit.shutdown(2_000),
    };
  },
});
const variants: Variant[] = [
  {
    name: 'posthog-node getFeatureFlagResult',
    async setup() {
      const client = new PostHog(base.apiKey, {
        host: base.host,
        secretKey: base.personalApiKey,
        disableGeoip: true,
      });
      await client.getFeatureFlagResult('bench-flag', 'warm', { onlyEvaluateLocally: true });
      return {
        call: (u) =>
          client.getFeatureFlagResult('bench-flag', u, { ...options, disableGeoip: true }),
        stop: () => client.shutdown(2_000),
      };
    },
  },
  kitVariant('kit featureEnabled', {}),
  kitVariant('kit featureEnabled + result cache (memory)', { featureFlagsCacheTtlMs: 600_000 }),
  kitVariant('kit featureEnabled + result cache (Redis)', {
    featureFlagsCacheTtlMs: 600_000,
    redisUrl: redis.url,
  }),
];

const results: Record<string, number[]> = {};
const ratios: Record<string, number[]> = {};
try {
  for (let round = 1; round <= rounds; round++) {
    let direct = 0;
    for (const variant of variants) {
      const { call, stop } = await variant.setup();
      try {
        await opsPerSecond(call); // warm-up, and the result cache fills
        const ops = await opsPerSecond(call);
        direct ||= ops;
        results[variant.name] = [...(results[variant.name] ?? []), ops];
        // Against posthog-node in the same round: the machine's noise cancels out.
        ratios[variant.name] = [...(ratios[variant.name] ?? []), ops / direct];
        console.error(`round ${round} ${variant.name.padEnd(46)} ${Math.round(ops)} ops/s`);
      } finally {
        await stop();
      }
    }
  }
} finally {
  await redis.stop();
  await emulator.stop();
}
console.log(
  `\nfeatureEnabled, local evaluation, ${userCount} users, events on (deduped), median of ${rounds} × ${seconds} s (${cpus().length} cores, Node ${process.versions.node}):\n`,
);
console.log('| call | ops/s | µs per call | vs posthog-node |');
console.log('| --- | --- | --- | --- |');
for (const variant of variants) {
  const ops = median(results[variant.name] ?? [0]);
  const ratio = median(ratios[variant.name] ?? [0]);
  console.log(
    `| ${variant.name} | ${Math.round(ops).toLocaleString('en-US')} | ${(1e6 / ops).toFixed(1)} | ${ratio.toFixed(2)}× |`,
  );
}
save('flags-eval', { seconds, rounds, userCount, results, ratios });
