// Shared flag definitions on a real local Redis Cluster: the global setup's three nodes
// (from POSTHOG_REDIS_URL's comma-separated seed nodes, and through a Keyv the app builds
// on createCluster), and clusters of the tests' own that lose a node: killed and
// restarted, and failed over to its replica (killed, then gracefully back).
import KeyvRedis, { createCluster } from '@keyv/redis';
import { flag, startEmulator } from '@posthog-kit/testing';
import { Keyv } from 'keyv';
import { describe, inject, it, type TestContext } from 'vitest';
import {
  clusterKeySlot,
  clusterMasterPort,
  RedisCluster,
  redisCommand,
} from '../../../test/redis-server.ts';
import { ErrorReporter } from '../src/errors.ts';
import { RedisLease } from '../src/flags/lease.ts';
import { GuardedStore, resolveStore } from '../src/flags/store.ts';
import type { PostHogKit, PostHogKitOptions } from '../src/index.ts';
import {
  type Answers,
  answersOf,
  FLAGS,
  flagsOf,
  isLeader,
  referenceAnswers,
  sleep,
  USERS,
  uniquePrefix,
  until,
} from './flag-cache-helpers.ts';
import { kitFor, memoryLogger } from './helpers.ts';

const clusterUrl = inject('redisClusterUrl');
const skipReason = inject('redisClusterSkipReason');
const seedPort = clusterUrl ? Number(new URL(clusterUrl.split(',')[0] as string).port) : 0;

const leaders = (kits: PostHogKit[]) => kits.filter(isLeader);

async function fixture(onTestFinished: TestContext['onTestFinished']) {
  const emulator = await startEmulator({ flags: FLAGS });
  const reference = await referenceAnswers(emulator);
  const logger = memoryLogger();
  const kits: PostHogKit[] = [];
  onTestFinished(async () => {
    await Promise.all(kits.map((k) => k.shutdown(2_000)));
    await emulator.close();
  });
  const start = (options: PostHogKitOptions) => {
    const kit = kitFor(emulator, {
      personalApiKey: emulator.personalApiKey,
      pollIntervalMs: 200,
      flagDefinitionsLockTtlMs: 600,
      flagDefinitionsCacheTtlMs: 10_000,
      logger,
      ...options,
    });
    kits.push(kit);
    return kit;
  };
  return { emulator, reference, logger, kits, start };
}

/** The shared keys of a kit: lease and data. */
async function keysOf(kit: PostHogKit): Promise<{ lock: string; data: string }> {
  const keys = await flagsOf(kit)?.definitions?.keys;
  if (!keys) throw new Error('no shared definitions');
  return keys;
}

describe.skipIf(!clusterUrl)(
  `shared flag definitions on a Redis Cluster${skipReason ? ` (${skipReason})` : ''}`,
  { concurrent: true },
  () => {
    it('POSTHOG_REDIS_URL with the seed nodes: one leader, the lease and the data in one slot, answers right', async ({
      expect,
      onTestFinished,
    }) => {
      const { emulator, reference, start } = await fixture(onTestFinished);
      const prefix = uniquePrefix('cluster');
      const env = { POSTHOG_REDIS_URL: clusterUrl, POSTHOG_FLAG_DEFINITIONS_CACHE_PREFIX: prefix };
      const group = [start({ env }), start({ env }), start({ env })];
      for (const kit of group) expect(await answersOf(kit)).toEqual(reference);
      expect(leaders(group)).toHaveLength(1);
      expect(flagsOf(group[0] as PostHogKit)?.status().store?.description).toBe('Redis Cluster');

      const { lock, data } = await keysOf(group[0] as PostHogKit);
      expect(lock).toMatch(/\{[0-9a-f]{16}\}:lock$/);
      expect(await clusterKeySlot(seedPort, lock)).toBe(await clusterKeySlot(seedPort, data));
      // Both live on the master of that slot: the leader's token and the published entry.
      const master = await clusterMasterPort(seedPort, lock);
      const leader = leaders(group)[0] as PostHogKit;
      expect(await redisCommand(master, ['GET', lock])).toBe(flagsOf(leader)?.definitions?.token);
      expect(await redisCommand(master, ['EXISTS', data])).toBe(1);

      // Steady state: only the leader polls.
      emulator.reset();
      await sleep(200 * 6);
      expect(emulator.definitionsFetchCount).toBeGreaterThanOrEqual(3);
      expect(emulator.definitionsFetchCount).toBeLessThanOrEqual(8);

      // Released by its owner at shutdown (compare-and-delete on the cluster), taken over.
      await leader.shutdown(2_000);
      const rest = group.filter((k) => k !== leader);
      expect(await until(() => leaders(rest).length === 1, 3_000)).toBe(true);
      const next = leaders(rest)[0] as PostHogKit;
      expect(
        await until(
          async () =>
            (await redisCommand(master, ['GET', lock])) === flagsOf(next)?.definitions?.token,
        ),
      ).toBe(true);
      for (const kit of rest) expect(await answersOf(kit)).toEqual(reference);
    });

    it('the lease is atomic on the cluster: one owner among racers, extended and released only by it', async ({
      expect,
    }) => {
      const errors = new ErrorReporter('ignore', undefined, []);
      const store = new GuardedStore(resolveStore(undefined, clusterUrl), errors);
      const key = `${uniquePrefix('cluster-lease')}:{lease-test}:lock`;
      const master = await clusterMasterPort(seedPort, key);
      try {
        const attempts = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            new RedisLease(store, key, `racer-${i}`, 2_000).acquire(),
          ),
        );
        expect(attempts.filter((x) => x?.held)).toHaveLength(1);
        const winner = attempts.find((x) => x?.held)?.owner;
        // The others are told who holds it.
        for (const a of attempts.filter((x) => !x?.held)) expect(a?.owner).toBe(winner);
        await redisCommand(master, ['DEL', key]);

        const a = new RedisLease(store, key, 'owner-a', 2_000);
        const b = new RedisLease(store, key, 'owner-b', 2_000);
        expect((await a.acquire())?.acquired).toBe(true);
        expect((await b.acquire())?.held).toBe(false);
        expect((await a.acquire())?.acquired).toBe(false);
        await b.release(); // not the owner: nothing happens
        expect(await redisCommand(master, ['GET', key])).toBe('owner-a');
        await a.release();
        expect(await redisCommand(master, ['GET', key])).toBeNull();
      } finally {
        await redisCommand(master, ['DEL', key]);
        await store.close();
      }
    });

    it("the app's own Keyv on createCluster: the same sharing, and the kit leaves the client open", async ({
      expect,
      onTestFinished,
    }) => {
      const { reference, start } = await fixture(onTestFinished);
      const prefix = uniquePrefix('cluster-keyv');
      const clients = [0, 1].map(() =>
        createCluster({ rootNodes: clusterUrl.split(',').map((url) => ({ url })) }),
      );
      onTestFinished(async () => {
        for (const c of clients) await c.close().catch(() => {});
      });
      const group = clients.map((client) =>
        start({
          cache: new Keyv(new KeyvRedis(client)),
          flagDefinitionsCachePrefix: prefix,
        }),
      );
      for (const kit of group) expect(await answersOf(kit)).toEqual(reference);
      expect(leaders(group)).toHaveLength(1);
      expect(flagsOf(group[0] as PostHogKit)?.status().store?.description).toBe(
        'the given Redis Cluster Keyv',
      );
      // Keyv's namespace prefixes the data key; the hash tag keeps it on the lease's node.
      const { lock, data } = await keysOf(group[0] as PostHogKit);
      const master = await clusterMasterPort(seedPort, lock);
      const stored = await redisCommand(master, ['KEYS', `*${data}`]);
      expect(stored).toEqual([expect.stringMatching(/^keyv:.+:data$/)]);
      await Promise.all(group.map((k) => k.shutdown(2_000)));
      for (const c of clients) expect(c.isOpen).toBe(true);
    });
  },
);

/** Answers every user's flags on every kit in a loop until stopped; counts wrong ones. */
function keepAsking(kits: PostHogKit[], reference: Answers) {
  let stop = false;
  let wrong = 0;
  let asked = 0;
  const users = USERS.slice(0, 4);
  const done = (async () => {
    while (!stop) {
      for (const kit of kits) {
        const answers = await answersOf(kit, { users });
        for (const user of users) {
          asked++;
          if (JSON.stringify(answers[user]) !== JSON.stringify(reference[user])) wrong++;
        }
      }
      await sleep(20);
    }
  })();
  return {
    async stop() {
      stop = true;
      await done;
      return { wrong, asked };
    },
  };
}

describe.skipIf(!clusterUrl)('a Redis Cluster losing the node that holds the slot', () => {
  it('killed and restarted (no replica): said once, answers right meanwhile, sharing resumes', async ({
    expect,
    onTestFinished,
  }) => {
    const cluster = await RedisCluster.start();
    onTestFinished(() => cluster.stop());
    const { emulator, reference, logger, start } = await fixture(onTestFinished);
    const prefix = uniquePrefix('cluster-kill');
    const group = [0, 1].map(() =>
      start({ redisUrl: cluster.url, flagDefinitionsCachePrefix: prefix }),
    );
    for (const kit of group) expect(await answersOf(kit)).toEqual(reference);
    expect(leaders(group)).toHaveLength(1);
    const { lock } = await keysOf(group[0] as PostHogKit);
    const { master } = await cluster.ownerOf(lock);

    const asking = keepAsking(group, reference);
    await master.stop();
    await sleep(1_500);
    const failing = () => logger.lines.filter((l) => l.includes('is failing'));
    expect(failing(), logger.lines.join('\n')).toHaveLength(2);
    const outage = await asking.stop();
    expect(outage.asked).toBeGreaterThan(20);
    expect(outage.wrong).toBe(0);
    // Each process fetches for itself meanwhile: a change still arrives.
    emulator.setFlags([
      ...FLAGS.filter((f) => f.key !== 'everyone'),
      flag('everyone', { active: false }),
    ]);
    const everyoneIs = (value: boolean) => async () => {
      for (const kit of group) {
        const v = await kit.getFeatureFlag('everyone', {
          distinctId: 'u',
          onlyEvaluateLocally: true,
        });
        if (v !== value) return false;
      }
      return true;
    };
    expect(await until(everyoneIs(false), 3_000)).toBe(true);
    emulator.setFlags(FLAGS);
    expect(await until(everyoneIs(true), 3_000)).toBe(true);

    const again = keepAsking(group, reference);
    await master.start();
    await cluster.waitUntilHealthy();
    const shared = async () =>
      leaders(group).length === 1 &&
      (await redisCommand(master.port, ['EXISTS', (await keysOf(group[0] as PostHogKit)).data])) ===
        1;
    expect(await until(shared, 10_000)).toBe(true);
    const recovered = () => logger.lines.filter((l) => l.includes('answers again'));
    expect(await until(() => recovered().length >= 2, 5_000)).toBe(true);
    const { wrong, asked } = await again.stop();
    expect(asked).toBeGreaterThan(20);
    expect(wrong).toBe(0);
    expect(failing()).toHaveLength(2);
    expect(recovered()).toHaveLength(2);
  }, 60_000);

  it('its master fails over to the replica (killed, then gracefully back): answers right, one leader, the data on the new master', async ({
    expect,
    onTestFinished,
    annotate,
  }) => {
    const cluster = await RedisCluster.start({ replicas: 1 });
    onTestFinished(() => cluster.stop());
    const { reference, logger, start } = await fixture(onTestFinished);
    const prefix = uniquePrefix('cluster-failover');
    const group = [0, 1, 2].map(() =>
      start({ redisUrl: cluster.url, flagDefinitionsCachePrefix: prefix }),
    );
    for (const kit of group) expect(await answersOf(kit)).toEqual(reference);
    const { lock, data } = await keysOf(group[0] as PostHogKit);
    const asking = keepAsking(group, reference);

    // 1. The master dies; its replica takes over after the node timeout (1 s here).
    const t0 = Date.now();
    const killed = await cluster.failover(lock, 'kill');
    const promotedMs = Date.now() - t0;
    const onNewMaster = async () =>
      leaders(group).length === 1 &&
      (await redisCommand(killed.now.port, ['EXISTS', data])) === 1 &&
      (await redisCommand(killed.now.port, ['GET', lock])) ===
        flagsOf(leaders(group)[0] as PostHogKit)?.definitions?.token &&
      group.every((k) => flagsOf(k)?.store?.failing === false);
    expect(await until(onNewMaster, 10_000)).toBe(true);
    const recoveredMs = Date.now() - t0;
    await annotate(
      `replica promoted ${promotedMs} ms after the kill; sharing back on it ${recoveredMs} ms after the kill`,
    );

    // 2. The old master comes back as a replica, then takes over again gracefully.
    await killed.old.start();
    await cluster.waitUntilHealthy();
    const failingBefore = logger.lines.filter((l) => l.includes('is failing')).length;
    const back = await cluster.failover(lock, 'graceful');
    expect(back.now.port).toBe(killed.old.port);
    // The lease and the data moved with the slot: one of the kits holds it on the new master.
    const tokens = group.map((k) => flagsOf(k)?.definitions?.token);
    const onOldMaster = async () =>
      leaders(group).length === 1 &&
      tokens.includes(String(await redisCommand(back.now.port, ['GET', lock]))) &&
      (await redisCommand(back.now.port, ['EXISTS', data])) === 1;
    expect(await until(onOldMaster, 10_000)).toBe(true);
    const { wrong, asked } = await asking.stop();
    await annotate(
      `${asked} answers, ${wrong} wrong; "is failing" lines: ${failingBefore} at the kill, ${logger.lines.filter((l) => l.includes('is failing')).length - failingBefore} at the graceful failover`,
    );
    expect(asked).toBeGreaterThan(100);
    expect(wrong).toBe(0);
    // The kill is one outage per process, said once each.
    expect(failingBefore).toBeLessThanOrEqual(group.length);
  }, 90_000);
});
