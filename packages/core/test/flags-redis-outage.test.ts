// Redis going away mid-run and coming back, on a redis-server of its own. In its own file:
// it measures how long flag calls take, which other tests' processes would disturb.
import { createClient } from '@keyv/redis';
import { flag, startEmulator } from '@posthog-kit/testing';
import { expect, inject, it } from 'vitest';
import { RedisError, RedisServer, redisCommand, redisInfo } from '../../../test/redis-server.ts';
import { STORE_RECOVERY_CONFIRM_MS, STORE_TIMEOUT_MS } from '../src/flags/store.ts';
import type { PostHogKit } from '../src/index.ts';
import { FLAGS, isLeader, sleep, USERS, uniquePrefix, until } from './flag-cache-helpers.ts';
import { kitFor, memoryLogger } from './helpers.ts';

const redisUrl = inject('redisUrl');

// The global redis-server is not used: this test stops and restarts a server of its own.
it.skipIf(!redisUrl)(
  'Redis stopped mid-run: answers keep coming from memory, quickly; sharing resumes when it is back',
  async ({ onTestFinished }) => {
    const emulator = await startEmulator({ flags: FLAGS });
    onTestFinished(() => emulator.close());
    const server = await RedisServer.start();
    const logger = memoryLogger();
    const prefix = uniquePrefix('outage');
    const kits: PostHogKit[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        kits.push(
          kitFor(emulator, {
            personalApiKey: emulator.personalApiKey,
            redisUrl: server.url,
            pollIntervalMs: 200,
            flagDefinitionsLockTtlMs: 600,
            flagDefinitionsCacheTtlMs: 5_000,
            flagDefinitionsCachePrefix: prefix,
            featureFlagsCacheTtlMs: 1_000,
            featureFlagsCachePrefix: `${prefix}:results`,
            logger,
          }),
        );
      }
      const check = async (value: boolean) => {
        let slowest = 0;
        for (const kit of kits) {
          for (const user of USERS.slice(0, 4)) {
            const t0 = performance.now();
            const answer = await kit.getFeatureFlag('everyone', {
              distinctId: user,
              onlyEvaluateLocally: true,
              sendFeatureFlagEvents: false,
            });
            slowest = Math.max(slowest, performance.now() - t0);
            if (answer !== value) return { right: false, slowest };
          }
        }
        return { right: true, slowest };
      };
      expect((await check(true)).right).toBe(true);
      expect(kits.filter(isLeader)).toHaveLength(1);

      await server.stop();
      let slowest = 0;
      for (let i = 0; i < 15; i++) {
        const r = await check(true);
        expect(r.right).toBe(true);
        slowest = Math.max(slowest, r.slowest);
        await sleep(100);
      }
      // No request waits longer than one store timeout, even while the store fails.
      expect(slowest).toBeLessThan(STORE_TIMEOUT_MS + 100);
      const failing = logger.lines.filter((l) => l.includes('flag cache (Redis) is failing'));
      expect(failing, logger.lines.join('\n')).toHaveLength(2);

      // Each process fetches for itself meanwhile: a change still arrives.
      emulator.setFlags([
        ...FLAGS.filter((f) => f.key !== 'everyone'),
        flag('everyone', { active: false }),
      ]);
      expect(await until(async () => (await check(false)).right, 3_000)).toBe(true);

      await server.start();
      const shared = async () => {
        const leaders = kits.filter(isLeader).length;
        const client = createClient({ url: server.url });
        try {
          await client.connect();
          const keys = await client.keys(`${prefix}:*:data`);
          return leaders === 1 && keys.length === 1;
        } finally {
          await client.close();
        }
      };
      expect(await until(shared, 8_000)).toBe(true);
      // Each process says so once, when it next uses the store (its next poll).
      const recovered = () => logger.lines.filter((l) => l.includes('answers again'));
      await until(async () => recovered().length >= 2, 3_000 + STORE_RECOVERY_CONFIRM_MS);
      expect(recovered(), logger.lines.join('\n')).toHaveLength(2);
      emulator.reset();
      await sleep(200 * 6);
      // Only the leader polls again (two processes fetching alone would make about 12).
      expect(emulator.definitionsFetchCount).toBeLessThanOrEqual(8);
      expect((await check(false)).right).toBe(true);
    } finally {
      await Promise.all(kits.map((k) => k.shutdown(2_000)));
      await server.stop();
    }
  },
  30_000,
);

// Redis at maxmemory with noeviction refuses writes and still answers reads: a probe that
// reads would end the outage every second and the next write start it again.
it.skipIf(!redisUrl)(
  'Redis at maxmemory with noeviction: one "failing" line per process for the whole outage, one "answers again" after',
  async ({ onTestFinished, annotate }) => {
    const emulator = await startEmulator({ flags: FLAGS });
    onTestFinished(() => emulator.close());
    const server = await RedisServer.start({
      args: ['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction'],
    });
    onTestFinished(() => server.stop());
    const logger = memoryLogger();
    const prefix = uniquePrefix('oom');
    const kits: PostHogKit[] = [];
    onTestFinished(() => Promise.all(kits.map((k) => k.shutdown(2_000))).then(() => {}));
    for (let i = 0; i < 2; i++) {
      kits.push(
        kitFor(emulator, {
          personalApiKey: emulator.personalApiKey,
          redisUrl: server.url,
          pollIntervalMs: 200,
          flagDefinitionsLockTtlMs: 600,
          flagDefinitionsCacheTtlMs: 60_000,
          flagDefinitionsCachePrefix: prefix,
          // Every evaluation of a new user writes a result: both processes write.
          featureFlagsCacheTtlMs: 60_000,
          featureFlagsCachePrefix: `${prefix}:results`,
          logger,
        }),
      );
    }
    let n = 0;
    const check = async () => {
      for (const kit of kits) {
        const answer = await kit.getFeatureFlag('everyone', {
          distinctId: `user-${n++}`,
          onlyEvaluateLocally: true,
          sendFeatureFlagEvents: false,
        });
        if (answer !== true) return false;
      }
      return true;
    };
    expect(await check()).toBe(true);
    expect(kits.filter(isLeader)).toHaveLength(1);

    // Redis past its maxmemory: from now on it refuses writes (OOM) and still answers reads.
    await fillUp(server);
    expect(await server.command('SET', 'one-more', '1')).toBeInstanceOf(RedisError);
    expect(await server.command('GET', 'filler:0')).toBe('x'.repeat(64 * 1024));
    const failing = () => logger.lines.filter((l) => l.includes('is failing'));
    const recovered = () => logger.lines.filter((l) => l.includes('answers again'));
    const outageEnd = Date.now() + 4_000;
    let rounds = 0;
    while (Date.now() < outageEnd) {
      expect(await check()).toBe(true);
      rounds++;
      await sleep(50);
    }
    await annotate(
      `${rounds} rounds in 4 s at maxmemory: ${failing().length} "failing" lines, ${recovered().length} "answers again"`,
    );
    expect(failing(), logger.lines.join('\n')).toHaveLength(2);
    expect(failing().every((l) => l.includes('OOM'))).toBe(true);
    expect(recovered(), logger.lines.join('\n')).toHaveLength(0);

    // Room again: each process says so once, and sharing resumes.
    await server.command('CONFIG', 'SET', 'maxmemory', '0');
    expect(await until(() => recovered().length === 2, 3_000 + STORE_RECOVERY_CONFIRM_MS)).toBe(
      true,
    );
    expect(await until(() => kits.filter(isLeader).length === 1, 5_000)).toBe(true);
    expect(await check()).toBe(true);
    await sleep(1_000);
    expect(failing()).toHaveLength(2);
    expect(recovered()).toHaveLength(2);
  },
  30_000,
);

// Fills Redis past its maxmemory: 1 MB of data, then maxmemory lowered to 256 KB below what
// it uses. Every write is refused from then on, whatever a closed connection frees.
async function fillUp(server: RedisServer): Promise<void> {
  const value = 'x'.repeat(64 * 1024);
  for (let i = 0; i < 16; i++) await server.command('SET', `filler:${i}`, value);
  const used = Number((await redisInfo(server.port, 'memory')).get('used_memory'));
  await server.command('CONFIG', 'SET', 'maxmemory', String(used - 256 * 1024));
}

it.skipIf(!redisUrl)(
  'a wrong Redis password: said as the credentials, once, not as a store timeout; flags still answer',
  async ({ onTestFinished }) => {
    const emulator = await startEmulator({ flags: FLAGS });
    onTestFinished(() => emulator.close());
    const server = await RedisServer.start();
    onTestFinished(() => server.stop());
    // Set after start: the helper's readiness check is an unauthenticated PING.
    await redisCommand(server.port, ['CONFIG', 'SET', 'requirepass', 'right-password']);
    const logger = memoryLogger();
    const url = server.url.replace('redis://', 'redis://:wrong-password@');
    const kit = kitFor(emulator, {
      personalApiKey: emulator.personalApiKey,
      redisUrl: url,
      logger,
    });
    onTestFinished(() => kit.shutdown(1_000));
    // Evaluated from the process's own definitions meanwhile.
    expect(await kit.getFeatureFlag('everyone', { distinctId: USERS[0] as string })).toBe(true);
    await until(
      () => logger.lines.some((l) => l.includes('flag cache (Redis) is failing')),
      10_000,
    );
    const said = logger.lines.filter((l) => l.includes('flag cache (Redis) is failing'));
    expect(said).toHaveLength(1);
    expect(said[0]).toContain('POSTHOG_REDIS_URL: Redis refused the credentials (WRONGPASS');
    expect(logger.lines.join('\n')).not.toContain('wrong-password');
  },
);
