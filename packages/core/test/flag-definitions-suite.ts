// The shared flag definitions, run against each kind of store (keyv's test-suite style):
// Redis, an in-memory Keyv, and a small custom Keyv store. Kits in one process stand in
// for processes: each builds its own provider and, with Redis, its own connection.
import { flag, startEmulator } from '@posthog-kit/testing';
import { beforeAll, describe, it, type TestContext } from 'vitest';
import type { PostHogKit, PostHogKitOptions } from '../src/index.ts';
import {
  type Answers,
  answersOf,
  FLAGS,
  referenceAnswers,
  sleep,
  uniquePrefix,
  until,
} from './flag-cache-helpers.ts';
import { kitFor, memoryLogger } from './helpers.ts';

export interface StoreUnderTest {
  name: string;
  /** Why the suite is skipped (no redis-server), or undefined. */
  skip?: string | undefined;
  /** The kit options that select the store: `{ redisUrl }` or `{ cache }`. */
  options(): PostHogKitOptions;
  /** Writes a raw value at a key of the store (for the corrupt-data test). */
  writeRaw(key: string, text: string): Promise<void>;
}

const POLL_MS = 150;
const LOCK_TTL_MS = 450;

const leaders = (kits: PostHogKit[]) => kits.filter((k) => k.flags?.definitions?.leader);

/**
 * Each test has its own emulator, kits and prefix, so the tests of a suite run at once:
 * they mostly wait for polls.
 */
async function fixture(store: StoreUnderTest, onTestFinished: TestContext['onTestFinished']) {
  const emulator = await startEmulator({ flags: FLAGS });
  const logger = memoryLogger();
  const kits: PostHogKit[] = [];
  onTestFinished(async () => {
    await Promise.all(kits.map((k) => k.shutdown(2_000)));
    await emulator.close();
  });
  const start = (prefix: string, extra: PostHogKitOptions = {}) => {
    const kit = kitFor(emulator, {
      personalApiKey: emulator.personalApiKey,
      pollIntervalMs: POLL_MS,
      flagDefinitionsLockTtlMs: LOCK_TTL_MS,
      flagDefinitionsCacheTtlMs: 3_000,
      flagDefinitionsCachePrefix: prefix,
      logger,
      ...store.options(),
      ...extra,
    });
    kits.push(kit);
    return kit;
  };
  return { emulator, logger, start };
}

export function flagDefinitionsSuite(store: StoreUnderTest): void {
  const name = `shared flag definitions on ${store.name}`;
  describe.skipIf(store.skip !== undefined)(name, { concurrent: true }, () => {
    let reference: Answers;

    beforeAll(async () => {
      const emulator = await startEmulator({ flags: FLAGS });
      reference = await referenceAnswers(emulator);
      await emulator.close();
    });

    it('one leader fetches and publishes, the others read, and every answer is right', async ({
      expect,
      onTestFinished,
    }) => {
      const { emulator, start } = await fixture(store, onTestFinished);
      const prefix = uniquePrefix('leader');
      const group = [start(prefix), start(prefix), start(prefix)];
      for (const kit of group) expect(await answersOf(kit)).toEqual(reference);
      expect(leaders(group)).toHaveLength(1);
      expect(emulator.flagsRequestCount).toBe(0);

      // Steady state: only the leader polls PostHog.
      emulator.reset();
      await sleep(POLL_MS * 6);
      expect(emulator.definitionsFetchCount).toBeLessThanOrEqual(8);
      expect(emulator.definitionsFetchCount).toBeGreaterThanOrEqual(3);
      for (const kit of group) expect(await answersOf(kit)).toEqual(reference);
      expect(leaders(group)).toHaveLength(1);
    });

    it('a new process with a warm shared cache evaluates at once, without asking PostHog', async ({
      expect,
      onTestFinished,
    }) => {
      const { emulator, start } = await fixture(store, onTestFinished);
      const prefix = uniquePrefix('warm');
      // Slow polls, so the only requests to PostHog are the ones this test is about.
      const slow = {
        pollIntervalMs: 60_000,
        flagDefinitionsLockTtlMs: 60_000,
        flagDefinitionsCacheTtlMs: 60_000,
      };
      const leader = start(prefix, slow);
      expect(await answersOf(leader)).toEqual(reference);
      await until(async () => (await sharedEntry(leader)) !== undefined);
      expect(emulator.definitionsFetchCount).toBe(1);
      const newcomer = start(prefix, slow);
      expect(await answersOf(newcomer)).toEqual(reference);
      expect(emulator.definitionsFetchCount).toBe(1);
      expect(emulator.flagsRequestCount).toBe(0);
    });

    it('a flag change reaches every process through the leader', async ({
      expect,
      onTestFinished,
    }) => {
      const { emulator, start } = await fixture(store, onTestFinished);
      const prefix = uniquePrefix('change');
      const group = [start(prefix), start(prefix)];
      for (const kit of group) expect(await answersOf(kit)).toEqual(reference);
      emulator.setFlags([
        ...FLAGS.filter((f) => f.key !== 'everyone'),
        flag('everyone', { active: false }),
      ]);
      const switchedOff = async () => {
        for (const kit of group) {
          const value = await kit.getFeatureFlag('everyone', {
            distinctId: 'user-1',
            onlyEvaluateLocally: true,
          });
          if (value !== false) return false;
        }
        return true;
      };
      expect(await until(switchedOff, POLL_MS * 10)).toBe(true);
    });

    it('a leader that only gets 304s keeps the shared copy alive past its TTL', async ({
      expect,
      onTestFinished,
    }) => {
      const { emulator, start } = await fixture(store, onTestFinished);
      const prefix = uniquePrefix('alive');
      const leader = start(prefix, { flagDefinitionsCacheTtlMs: POLL_MS * 2 });
      expect(await answersOf(leader)).toEqual(reference);
      await sleep(POLL_MS * 8);
      expect(emulator.definitionsNotModifiedCount).toBeGreaterThan(3);
      const entry = await sharedEntry(leader);
      expect(entry).toBeDefined();
      expect(Date.now() - (entry?.savedAt ?? 0)).toBeLessThan(POLL_MS * 3);
    });

    it('corrupt or foreign data is ignored (said once) and replaced by the leader', async ({
      expect,
      onTestFinished,
    }) => {
      const { logger, start } = await fixture(store, onTestFinished);
      const prefix = uniquePrefix('corrupt');
      const group = [start(prefix), start(prefix)];
      for (const kit of group) expect(await answersOf(kit)).toEqual(reference);
      const keys = await group[0]?.flags?.definitions?.keys;
      const follower = group.find((k) => !k.flags?.definitions?.leader) as PostHogKit;
      for (const text of ['{not json', JSON.stringify({ v: 99, data: 'from elsewhere' })]) {
        const said = () => logger.lines.filter((l) => l.includes('shared flag definitions under'));
        const before = said().length;
        // The leader publishes every poll: corrupt again until the follower has read it once.
        for (let i = 0; i < 5 && said().length === before; i++) {
          // The stamp too: with a stamp matching what it holds, a follower does not read the data.
          await store.writeRaw(keys?.stamp as string, text);
          await store.writeRaw(keys?.data as string, text);
          // What posthog-node calls on a follower's poll: nothing usable, so it keeps its own.
          expect(await follower.flags?.definitions?.getFlagDefinitions()).toBeUndefined();
        }
        await sleep(POLL_MS * 3);
        for (const kit of group) expect(await answersOf(kit)).toEqual(reference);
        expect(
          await until(
            async () => (await sharedEntry(group[0] as PostHogKit)) !== undefined,
            POLL_MS * 10,
          ),
        ).toBe(true);
      }
      const complaints = logger.lines.filter((l) => l.includes('shared flag definitions under'));
      expect(complaints.length).toBeGreaterThanOrEqual(1);
      expect(complaints.length).toBeLessThanOrEqual(10);
    });

    it('the leader releases its lease at shutdown and a follower takes over', async ({
      expect,
      onTestFinished,
    }) => {
      const { emulator, start } = await fixture(store, onTestFinished);
      const prefix = uniquePrefix('handover');
      const group = [start(prefix), start(prefix), start(prefix)];
      for (const kit of group) expect(await answersOf(kit)).toEqual(reference);
      const [leader] = leaders(group);
      await leader?.shutdown(2_000);
      const rest = group.filter((k) => k !== leader);
      expect(await until(() => leaders(rest).length === 1, LOCK_TTL_MS + POLL_MS * 4)).toBe(true);
      emulator.setFlags([
        ...FLAGS.filter((f) => f.key !== 'everyone'),
        flag('everyone', { active: false }),
      ]);
      const seen = async () => {
        for (const kit of rest) {
          if (
            (await kit.getFeatureFlag('everyone', {
              distinctId: 'u',
              onlyEvaluateLocally: true,
            })) !== false
          )
            return false;
        }
        return true;
      };
      expect(await until(seen, POLL_MS * 10)).toBe(true);
    });

    it('PostHog answering 500 or 401: every process keeps answering from the shared copy', async ({
      expect,
      onTestFinished,
    }) => {
      const { emulator, logger, start } = await fixture(store, onTestFinished);
      const prefix = uniquePrefix('faults');
      const group = [start(prefix), start(prefix)];
      for (const kit of group) expect(await answersOf(kit)).toEqual(reference);
      for (const status of [500, 401]) {
        emulator.fault('definitions', { status, times: 3 });
        await sleep(POLL_MS * 4);
        for (const kit of group) expect(await answersOf(kit)).toEqual(reference);
        emulator.clearFaults();
      }
      expect(logger.lines.some((l) => l.includes('HTTP 500'))).toBe(true);
      expect(logger.lines.some((l) => l.includes('POSTHOG_PERSONAL_API_KEY: rejected'))).toBe(true);
      expect(leaders(group)).toHaveLength(1);
    });

    it('PostHog answering 402 (quota): every process answers defaults, as posthog-node does, until it is lifted', async ({
      expect,
      onTestFinished,
    }) => {
      const { emulator, start } = await fixture(store, onTestFinished);
      const prefix = uniquePrefix('quota');
      const group = [start(prefix), start(prefix)];
      for (const kit of group) expect(await answersOf(kit)).toEqual(reference);
      emulator.fault('definitions', { status: 402 });
      const allOff = async () => {
        for (const kit of group) {
          if (
            (await kit.getFeatureFlag('everyone', {
              distinctId: 'u',
              onlyEvaluateLocally: true,
            })) !== undefined
          )
            return false;
        }
        return true;
      };
      expect(await until(allOff, POLL_MS * 10)).toBe(true);
      emulator.clearFaults();
      const allBack = async () => {
        for (const kit of group)
          if ((await answersOf(kit))['user-1']?.everyone !== true) return false;
        return true;
      };
      expect(await until(allBack, POLL_MS * 10)).toBe(true);
      for (const kit of group) expect(await answersOf(kit)).toEqual(reference);
    });
  });
}

/** The shared entry as the kit's store holds it (parsed), or undefined. */
async function sharedEntry(kit: PostHogKit): Promise<{ savedAt: number } | undefined> {
  const store = kit.flags?.store;
  const keys = await kit.flags?.definitions?.keys;
  if (!store || !keys) return undefined;
  const { readKey } = await import('../src/flags/store.ts');
  const { parseEntry } = await import('../src/flags/definitions-cache.ts');
  const read = await store.run('test read', (s) => readKey(s.keyv, keys.data));
  return read.ok ? parseEntry(read.value) : undefined;
}
