// Store-only processes (POSTHOG_FLAG_DEFINITIONS_SOURCE=store): no personal key, never a
// definitions request, local evaluation from the shared store that a relay keeps fresh (a
// kit with the key, or the posthog-kit-relay command); an empty or stale store said once,
// answered as posthog-node answers without definitions; a cold start from a warm store
// with PostHog down; one entry per host and project. On the test project's redis-server.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { flag, type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { describe, inject, it, type TestContext } from 'vitest';
import { definitionKeys } from '../src/flags/store.ts';
import type { FlagsStatus, PostHogKit, PostHogKitOptions } from '../src/index.ts';
import {
  answersOf,
  FLAGS,
  flagsOf,
  referenceAnswers,
  sleep,
  uniquePrefix,
  until,
} from './flag-cache-helpers.ts';
import { kitFor, memoryLogger } from './helpers.ts';

const redisUrl = inject('redisUrl');
const RELAY = fileURLToPath(new URL('../src/relay/cli.ts', import.meta.url));
const POLL_MS = 200;

/** Requests to the emulator's definitions and remote evaluation endpoints since `since`. */
const flagRequests = (emulator: PostHogEmulator, since: number) =>
  emulator.requests.filter(
    (r) => r.timestamp >= since && (r.endpoint === 'definitions' || r.endpoint === 'flags'),
  );

async function fixture(onTestFinished: TestContext['onTestFinished']) {
  const emulator = await startEmulator({ flags: FLAGS });
  const reference = await referenceAnswers(emulator);
  const logger = memoryLogger();
  const kits: PostHogKit[] = [];
  onTestFinished(async () => {
    await Promise.all(kits.map((k) => k.shutdown(2_000)));
    await emulator.close();
  });
  const prefix = uniquePrefix('source');
  const base: PostHogKitOptions = {
    redisUrl,
    pollIntervalMs: POLL_MS,
    flagDefinitionsLockTtlMs: 600,
    flagDefinitionsCacheTtlMs: 10_000,
    flagDefinitionsCachePrefix: prefix,
    logger,
  };
  /** A kit with the personal key: it keeps the store fresh. */
  const relay = (extra: PostHogKitOptions = {}) => {
    const kit = kitFor(emulator, { ...base, personalApiKey: emulator.personalApiKey, ...extra });
    kits.push(kit);
    return kit;
  };
  /** A store-only kit: no personal key. */
  const reader = (extra: PostHogKitOptions = {}) => {
    const kit = kitFor(emulator, { ...base, flagDefinitionsSource: 'store', ...extra });
    kits.push(kit);
    return kit;
  };
  return { emulator, reference, logger, prefix, relay, reader };
}

describe.skipIf(!redisUrl)(
  'store-only processes (POSTHOG_FLAG_DEFINITIONS_SOURCE=store)',
  {
    concurrent: true,
  },
  () => {
    it('evaluate locally from the store a relay keeps fresh, never asking PostHog for definitions', async ({
      expect,
      onTestFinished,
    }) => {
      const { emulator, reference, relay, reader } = await fixture(onTestFinished);
      const leader = relay();
      expect(await answersOf(leader)).toEqual(reference);
      const since = Date.now();
      const group = [reader(), reader({ env: { POSTHOG_FLAG_DEFINITIONS_SOURCE: 'store' } })];
      // The second one set by the environment; code wins over it, none given here.
      for (const kit of group) expect(await answersOf(kit)).toEqual(reference);
      await sleep(POLL_MS * 4);
      // Only the relay talks to PostHog, with its key; the readers never do.
      const requests = flagRequests(emulator, since);
      expect(requests.filter((r) => r.endpoint === 'flags')).toHaveLength(0);
      expect(requests.every((r) => r.headers.authorization?.startsWith('Bearer'))).toBe(true);
      for (const kit of group) {
        const status = flagsOf(kit)?.status() as FlagsStatus;
        expect(status.mode).toBe('store');
        expect(status.source).toBe('shared-store');
        expect(status.leader).toBe(false);
        expect(status.leaderIdentity).toBe(flagsOf(leader)?.status().identity);
        expect(status.ageMs).toBeLessThan(POLL_MS * 4);
        expect(status.flagCount).toBe(FLAGS.length);
        expect(status.stale).toBe(false);
      }

      // A change reaches them through the relay.
      emulator.setFlags([
        ...FLAGS.filter((f) => f.key !== 'everyone'),
        flag('everyone', { active: false }),
      ]);
      const off = async () => {
        for (const kit of group) {
          const v = await kit.getFeatureFlag('everyone', {
            distinctId: 'u',
            onlyEvaluateLocally: true,
          });
          if (v !== false) return false;
        }
        return true;
      };
      expect(await until(off, POLL_MS * 10)).toBe(true);
    });

    it("a poll that changes nothing reads the small stamp, not the data: the reader's memo survives it", async ({
      expect,
      onTestFinished,
    }) => {
      const { emulator, reference, relay, reader } = await fixture(onTestFinished);
      relay();
      const kit = reader();
      expect(await answersOf(kit)).toEqual(reference);
      const memo = flagsOf(kit)?.memo;
      const remembered = memo?.size ?? 0;
      expect(remembered).toBeGreaterThan(0);
      // Five polls, each confirmed by the relay (304s): nothing reloaded, nothing forgotten.
      await sleep(POLL_MS * 5);
      expect(memo?.size).toBe(remembered);
      expect(flagsOf(kit)?.status().ageMs).toBeLessThan(POLL_MS * 3);
      // A change is read at the next poll, and the memo starts again.
      emulator.setFlags([
        ...FLAGS.filter((f) => f.key !== 'everyone'),
        flag('everyone', { active: false }),
      ]);
      const off = async () =>
        (await kit.getFeatureFlag('everyone', { distinctId: 'u', onlyEvaluateLocally: true })) ===
        false;
      expect(await until(off, POLL_MS * 10)).toBe(true);
      expect(memo?.size).toBeLessThan(remembered);
    });

    it('an empty store: said once, answered as posthog-node answers without definitions, until a relay publishes', async ({
      expect,
      onTestFinished,
    }) => {
      const { emulator, reference, logger, relay, reader } = await fixture(onTestFinished);
      const kit = reader();
      const seen: FlagsStatus[] = [];
      flagsOf(kit)?.onStatus((s) => seen.push(s));
      // Locally: nothing to evaluate with, so undefined, as posthog-node without definitions.
      expect(
        await kit.getFeatureFlag('everyone', { distinctId: 'u', onlyEvaluateLocally: true }),
      ).toBe(undefined);
      // Else PostHog evaluates remotely, with the project key only: the same answers.
      const before = emulator.flagsRequestCount;
      expect(await answersOf(kit, { local: false })).toEqual(reference);
      expect(emulator.flagsRequestCount).toBeGreaterThan(before);
      expect(emulator.definitionsFetchCount).toBe(0);
      await sleep(POLL_MS * 5);
      const said = () => logger.lines.filter((l) => l.includes('no shared flag definitions'));
      expect(said(), logger.lines.join('\n')).toHaveLength(1);
      expect(said()[0]).toContain('posthog-kit-relay');
      const status = flagsOf(kit)?.status();
      expect(status?.source).toBe('none');
      expect(status?.stale).toBe(true);
      expect(status?.lastError?.message).toContain('no shared flag definitions');

      // A relay publishes: the reader says so once and evaluates locally again.
      relay();
      expect(
        await until(
          async () =>
            (await answersOf(kit)).toString() !== '' &&
            flagsOf(kit)?.status().source === 'shared-store',
          5_000,
        ),
      ).toBe(true);
      expect(await answersOf(kit)).toEqual(reference);
      expect(logger.lines.filter((l) => l.includes('fresh again'))).toHaveLength(1);
      const remote = emulator.flagsRequestCount;
      await answersOf(kit, { local: false });
      expect(emulator.flagsRequestCount).toBe(remote);
      // The status was exported on each change: none first, then the store.
      expect(seen.some((s) => s.source === 'none')).toBe(true);
      expect(seen.at(-1)?.source).toBe('shared-store');
      expect(said()).toHaveLength(1);
    });

    it('a store past the max age (the relay gone): said once, definitions dropped, remote answers', async ({
      expect,
      onTestFinished,
    }) => {
      const { emulator, reference, logger, relay, reader } = await fixture(onTestFinished);
      const leader = relay();
      expect(await answersOf(leader)).toEqual(reference);
      const kit = reader({ flagDefinitionsMaxAgeMs: 1_000 });
      expect(await answersOf(kit)).toEqual(reference);
      // The relay stops: nothing confirms the shared copy any more; it stays in the store.
      await leader.shutdown(2_000);
      const dropped = async () =>
        (await kit.getFeatureFlag('everyone', { distinctId: 'u', onlyEvaluateLocally: true })) ===
        undefined;
      expect(await until(dropped, 3_000)).toBe(true);
      const said = () => logger.lines.filter((l) => l.includes('past the max age'));
      await sleep(POLL_MS * 5);
      expect(said(), logger.lines.join('\n')).toHaveLength(1);
      expect(said()[0]).toContain('POSTHOG_FLAG_DEFINITIONS_MAX_AGE, 1 s');
      const before = emulator.flagsRequestCount;
      expect(await answersOf(kit, { local: false })).toEqual(reference);
      expect(emulator.flagsRequestCount).toBeGreaterThan(before);
      expect(flagsOf(kit)?.status().stale).toBe(true);
    });

    it('cold start from a warm store while PostHog is down: the first answers with no request to PostHog', async ({
      expect,
      onTestFinished,
    }) => {
      const { emulator, reference, relay, reader } = await fixture(onTestFinished);
      const slow = {
        pollIntervalMs: 60_000,
        flagDefinitionsLockTtlMs: 60_000,
        flagDefinitionsCacheTtlMs: 120_000,
      };
      const first = relay(slow);
      expect(await answersOf(first)).toEqual(reference);
      // Published, then the relay is gone (lease released) and PostHog is down.
      await until(async () => (await flagsOf(first)?.definitions?.keys) !== undefined);
      await sleep(100);
      await first.shutdown(2_000);
      emulator.fault('*', { drop: true });
      // Older than the newcomers' poll interval: a leader would fetch it again first.
      await sleep(1_200);
      const since = Date.now();
      // A store-only process, and a new process with the personal key (which takes the free
      // lease, starts from the shared copy, and only then tries PostHog).
      const newcomer = { ...slow, pollIntervalMs: 1_000 };
      const newcomers = [reader(newcomer), relay(newcomer)];
      for (const kit of newcomers) expect(await answersOf(kit)).toEqual(reference);
      const asked = flagRequests(emulator, since);
      // The store-only one never asks; the one with the key asks once, after its first answers.
      expect(asked.filter((r) => !r.headers.authorization)).toHaveLength(0);
      expect(asked.length).toBeLessThanOrEqual(1);
      expect(flagsOf(newcomers[0] as PostHogKit)?.status().source).toBe('shared-store');
      expect(flagsOf(newcomers[1] as PostHogKit)?.status().source).toBe('shared-store');
    });

    it('two hosts with the same project key never share an entry', async ({
      expect,
      onTestFinished,
    }) => {
      const one = await startEmulator({ flags: [flag('where', { rollout: 100 })] });
      const two = await startEmulator({ flags: [flag('where', { active: false })] });
      onTestFinished(async () => {
        await one.close();
        await two.close();
      });
      expect(one.projectApiKey).toBe(two.projectApiKey);
      const prefix = uniquePrefix('hosts');
      const kits: PostHogKit[] = [];
      onTestFinished(async () => {
        await Promise.all(kits.map((k) => k.shutdown(2_000)));
      });
      const options = { redisUrl, pollIntervalMs: POLL_MS, flagDefinitionsCachePrefix: prefix };
      for (const emulator of [one, two]) {
        kits.push(kitFor(emulator, { ...options, personalApiKey: emulator.personalApiKey }));
        kits.push(kitFor(emulator, { ...options, flagDefinitionsSource: 'store' }));
      }
      const where = (kit: PostHogKit) =>
        kit.getFeatureFlag('where', { distinctId: 'u', onlyEvaluateLocally: true });
      expect(await Promise.all(kits.map(where))).toEqual([true, true, false, false]);
      // Two leaders: one per host.
      expect(kits.filter((k) => flagsOf(k)?.definitions?.leader)).toHaveLength(2);
      const a = await definitionKeys(prefix, one.url, one.projectApiKey);
      const b = await definitionKeys(prefix, two.url, two.projectApiKey);
      expect(a.data).not.toBe(b.data);
      expect((await flagsOf(kits[1] as PostHogKit)?.definitions?.keys)?.data).toBe(a.data);
      expect((await flagsOf(kits[3] as PostHogKit)?.definitions?.keys)?.data).toBe(b.data);
    });
  },
);

/** The relay command, run from the sources as a child process. */
class RelayProcess {
  readonly proc: ChildProcess;
  readonly ready: Promise<string>;
  stderr = '';
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>;

  constructor(env: Record<string, string>) {
    this.proc = spawn(process.execPath, [RELAY, '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    this.exited = once(this.proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    this.proc.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    const lines = createInterface({ input: this.proc.stdout as NodeJS.ReadableStream });
    this.ready = new Promise((resolve, reject) => {
      lines.on('line', (line) => {
        if (line.startsWith('ready ')) resolve((JSON.parse(line.slice(6)) as { url: string }).url);
      });
      void this.exited.then(([code]) => reject(new Error(`relay exited ${code}: ${this.stderr}`)));
    });
  }

  async health(url: string): Promise<{ status: number; body: FlagsStatus & { ok: boolean } }> {
    const res = await fetch(url);
    return { status: res.status, body: (await res.json()) as FlagsStatus & { ok: boolean } };
  }
}

describe.skipIf(!redisUrl)('the posthog-kit-relay command', () => {
  it('keeps the store fresh for store-only processes, reports health, and releases the lease on SIGTERM', async ({
    expect,
    onTestFinished,
  }) => {
    const { emulator, reference, prefix, reader, logger } = await fixture(onTestFinished);
    const env = {
      POSTHOG_PROJECT_API_KEY: emulator.projectApiKey,
      POSTHOG_PERSONAL_API_KEY: emulator.personalApiKey,
      POSTHOG_HOST: emulator.url,
      POSTHOG_REDIS_URL: redisUrl,
      POSTHOG_POLL_INTERVAL: String(POLL_MS / 1000),
      POSTHOG_FLAG_DEFINITIONS_LOCK_TTL: '1',
      POSTHOG_FLAG_DEFINITIONS_CACHE_PREFIX: prefix,
      // The relay's settings come from the same environment as the app's: it fetches anyway.
      POSTHOG_FLAG_DEFINITIONS_SOURCE: 'store',
    };
    const relay = new RelayProcess(env);
    onTestFinished(() => {
      relay.proc.kill('SIGKILL');
    });
    const url = await relay.ready;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/healthz$/);
    expect(
      await until(async () => (await relay.health(url)).status === 200, 5_000),
      relay.stderr,
    ).toBe(true);
    const { body } = await relay.health(url);
    expect(body).toMatchObject({ ok: true, mode: 'poll', source: 'leader', leader: true });
    expect(body.identity).toMatch(new RegExp(`/${relay.proc.pid}$`));
    // No key anywhere in what it printed or serves.
    expect(relay.stderr + JSON.stringify(body)).not.toMatch(/ph[cx]_/);

    const kit = reader();
    expect(await answersOf(kit)).toEqual(reference);
    const status = flagsOf(kit)?.status();
    expect(status?.leaderIdentity).toBe(body.identity);

    // SIGTERM: it releases the lease (a kit with the key takes over at once) and exits 0.
    relay.proc.kill('SIGTERM');
    const [code] = await relay.exited;
    expect(code).toBe(0);
    const keys = await definitionKeys(prefix, emulator.url, emulator.projectApiKey);
    const { createClient } = await import('@keyv/redis');
    const raw = createClient({ url: redisUrl });
    await raw.connect();
    try {
      expect(await raw.get(keys.lock)).toBeNull();
      expect(await raw.exists(keys.data)).toBe(1);
    } finally {
      await raw.close();
    }
    expect(logger.lines.filter((l) => l.includes('no shared flag definitions'))).toHaveLength(0);
  });

  it('says what is missing and exits 2 without the personal key or a store', async ({ expect }) => {
    const relay = new RelayProcess({ POSTHOG_PROJECT_API_KEY: 'phc_whatever' });
    await expect(relay.ready).rejects.toThrow(/exited 2/);
    expect(relay.stderr).toContain('POSTHOG_PERSONAL_API_KEY');
    expect(relay.stderr).toContain('POSTHOG_REDIS_URL');
    expect(relay.stderr).not.toContain('phc_whatever');
  });

  it('reports 503 while the store has nothing fresh (PostHog unreachable from the start)', async ({
    expect,
    onTestFinished,
  }) => {
    const emulator = await startEmulator({ flags: FLAGS });
    onTestFinished(() => emulator.close());
    emulator.fault('*', { status: 500 });
    const relay = new RelayProcess({
      POSTHOG_PROJECT_API_KEY: emulator.projectApiKey,
      POSTHOG_PERSONAL_API_KEY: emulator.personalApiKey,
      POSTHOG_HOST: emulator.url,
      POSTHOG_REDIS_URL: redisUrl,
      POSTHOG_POLL_INTERVAL: '0.2',
      POSTHOG_FLAG_DEFINITIONS_CACHE_PREFIX: uniquePrefix('relay-down'),
    });
    onTestFinished(() => {
      relay.proc.kill('SIGKILL');
    });
    const url = await relay.ready;
    await sleep(600);
    const { status, body } = await relay.health(url);
    expect(status).toBe(503);
    expect(body.ok).toBe(false);
    expect(body.lastError?.message).toContain('HTTP 500');
    emulator.clearFaults();
    expect(await until(async () => (await relay.health(url)).status === 200, 5_000)).toBe(true);
  });
});
