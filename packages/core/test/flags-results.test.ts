// The flag result cache: its key, exact round-trips, `$feature_flag_called` on hits as
// posthog-node would have sent it, what is never cached, and a store that never answers.
import { type PostHogEmulator, type RecordedEvent, startEmulator } from '@posthog-kit/testing';
import { Keyv } from 'keyv';
import { PostHog } from 'posthog-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { ErrorReporter } from '../src/errors.ts';
import { canonicalJson, FlagResultCache } from '../src/flags/result-cache.ts';
import { GuardedStore, resolveStore, STORE_TIMEOUT_MS } from '../src/flags/store.ts';
import type { PostHogKit, PostHogKitOptions } from '../src/index.ts';
import { FLAGS, hangingStore, uniquePrefix } from './flag-cache-helpers.ts';
import { kitFor, memoryLogger } from './helpers.ts';

const redisUrl = inject('redisUrl');

let emulator: PostHogEmulator;
const kits: PostHogKit[] = [];
beforeAll(async () => {
  emulator = await startEmulator({ flags: FLAGS });
});
afterEach(async () => {
  await Promise.all(kits.splice(0).map((k) => k.shutdown(2_000)));
  emulator.reset();
});
afterAll(() => emulator.close());

const start = (options: PostHogKitOptions) => {
  const kit = kitFor(emulator, { clientOptions: { flushAt: 1, flushInterval: 0 }, ...options });
  kits.push(kit);
  return kit;
};

describe('the result cache key', () => {
  const cache = new FlagResultCache(
    new GuardedStore(
      resolveStore(undefined, undefined),
      new ErrorReporter('ignore', undefined, []),
    ),
    { prefix: 'p', ttlMs: 1_000, projectApiKey: 'phc_project', host: 'https://eu.i.posthog.com' },
  );
  const base = {
    groups: { company: 'acme' },
    personProperties: { plan: 'pro', seats: 3 },
    groupProperties: { company: { size: 'large' } },
    onlyEvaluateLocally: undefined,
    disableGeoip: true,
  };

  it('changes with every input that changes the answer, and only with those', async () => {
    const key = await cache.keyFor('flag', 'user-1', base, 'device-1');
    // Its own hash tag: entries spread over a Redis Cluster's slots.
    expect(key).toMatch(/^p:\{[0-9a-f]{64}\}$/);
    const variants = [
      cache.keyFor('other-flag', 'user-1', base, 'device-1'),
      cache.keyFor('flag', 'user-2', base, 'device-1'),
      cache.keyFor('flag', 'user-1', { ...base, groups: { company: 'globex' } }, 'device-1'),
      cache.keyFor('flag', 'user-1', { ...base, groups: undefined }, 'device-1'),
      cache.keyFor(
        'flag',
        'user-1',
        { ...base, personProperties: { plan: 'free', seats: 3 } },
        'device-1',
      ),
      cache.keyFor(
        'flag',
        'user-1',
        { ...base, personProperties: { plan: 'pro', seats: '3' } },
        'device-1',
      ),
      cache.keyFor(
        'flag',
        'user-1',
        { ...base, groupProperties: { company: { size: 'small' } } },
        'device-1',
      ),
      cache.keyFor('flag', 'user-1', { ...base, onlyEvaluateLocally: true }, 'device-1'),
      cache.keyFor('flag', 'user-1', { ...base, onlyEvaluateLocally: false }, 'device-1'),
      cache.keyFor('flag', 'user-1', { ...base, disableGeoip: false }, 'device-1'),
      cache.keyFor('flag', 'user-1', base, 'device-2'),
      cache.keyFor('flag', 'user-1', base, undefined),
    ];
    const keys = await Promise.all(variants);
    expect(new Set([key, ...keys]).size).toBe(keys.length + 1);
    // Another project never shares an entry.
    const other = new FlagResultCache(
      new GuardedStore(
        resolveStore(undefined, undefined),
        new ErrorReporter('ignore', undefined, []),
      ),
      { prefix: 'p', ttlMs: 1_000, projectApiKey: 'phc_other', host: 'https://eu.i.posthog.com' },
    );
    expect(await other.keyFor('flag', 'user-1', base, 'device-1')).not.toBe(key);
    // Nor the same project key on another host.
    const otherHost = new FlagResultCache(
      new GuardedStore(
        resolveStore(undefined, undefined),
        new ErrorReporter('ignore', undefined, []),
      ),
      { prefix: 'p', ttlMs: 1_000, projectApiKey: 'phc_project', host: 'https://us.i.posthog.com' },
    );
    expect(await otherHost.keyFor('flag', 'user-1', base, 'device-1')).not.toBe(key);
    // The order properties were written in does not matter.
    const reordered = {
      disableGeoip: true,
      onlyEvaluateLocally: undefined,
      groupProperties: { company: { size: 'large' } },
      personProperties: { seats: 3, plan: 'pro' },
      groups: { company: 'acme' },
    };
    expect(await cache.keyFor('flag', 'user-1', reordered, 'device-1')).toBe(key);
    // Fixed length, however long the inputs.
    const long = await cache.keyFor('flag', 'u'.repeat(10_000), base, undefined);
    expect(long.length).toBe(key.length);
  });

  it('canonical JSON sorts keys at every level', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[2,{"y":2,"z":1}]},"b":1}',
    );
    expect(canonicalJson({ a: undefined, b: new Date(0) })).toBe(
      '{"b":"1970-01-01T00:00:00.000Z"}',
    );
  });
});

interface Shared {
  name: string;
  skip?: string | undefined;
  options(): PostHogKitOptions;
}

const keyv = new Keyv();
const SHARED: Shared[] = [
  { name: 'an in-memory Keyv', options: () => ({ cache: keyv }) },
  {
    name: 'Redis',
    skip: redisUrl ? undefined : inject('redisSkipReason'),
    options: () => ({ redisUrl }),
  },
];

const flagCalls = (distinctId: string) =>
  emulator.events.filter((e) => e.event === '$feature_flag_called' && e.distinctId === distinctId);

for (const store of SHARED) {
  describe.skipIf(store.skip !== undefined)(`the flag result cache on ${store.name}`, () => {
    const cached = (prefix: string, extra: PostHogKitOptions = {}) =>
      start({
        featureFlagsCacheTtlMs: 60_000,
        featureFlagsCachePrefix: prefix,
        ...store.options(),
        ...extra,
      });

    it('true, false, variants, payloads and undefined come back exactly, without asking PostHog again', async () => {
      const prefix = uniquePrefix('roundtrip');
      const first = cached(prefix);
      const cases = [
        { key: 'everyone', distinctId: 'u1', personProperties: {} },
        { key: 'pro-only', distinctId: 'u1', personProperties: { plan: 'free' } },
        { key: 'colour', distinctId: 'u1', personProperties: {} },
        { key: 'colour', distinctId: 'u2', personProperties: {} },
        { key: 'no-such-flag', distinctId: 'u1', personProperties: {} },
      ];
      const misses = [];
      for (const c of cases) misses.push(await first.getFeatureFlagResult(c.key, c));
      expect(misses.map((r) => r && (r.enabled ? (r.variant ?? true) : false))).toEqual(
        expect.arrayContaining([true, false, undefined]),
      );
      expect(misses.some((r) => typeof r?.variant === 'string')).toBe(true);
      const asked = emulator.flagsRequestCount;
      expect(asked).toBe(cases.length);

      // Another process on the same store: every answer from the cache, exactly equal.
      const second = cached(prefix);
      for (const [i, c] of cases.entries()) {
        expect(await second.getFeatureFlagResult(c.key, c)).toStrictEqual(misses[i]);
        const value = await second.getFeatureFlag(c.key, c);
        const miss = misses[i];
        expect(value).toBe(
          miss === undefined ? undefined : miss.enabled ? (miss.variant ?? true) : false,
        );
      }
      const payload = await second.getFeatureFlagPayload(
        'colour',
        cases[2] as (typeof cases)[number],
      );
      expect(payload).toStrictEqual(misses[2]?.payload);
      expect(emulator.flagsRequestCount).toBe(asked);
    });

    it('a hit records $feature_flag_called as posthog-node would have: same properties, same dedupe', async () => {
      const prefix = uniquePrefix('events');
      const a = cached(prefix);
      const b = cached(prefix);
      const plain = start({});
      const ask = { distinctId: 'event-user', groups: { company: 'acme' } };
      const askPlain = { distinctId: 'plain-user', groups: { company: 'acme' } };

      await a.getFeatureFlag('colour', ask); // miss: posthog-node sends the event
      await a.getFeatureFlag('colour', ask); // hit in the same process: deduped, as posthog-node dedupes
      await plain.getFeatureFlag('colour', askPlain);
      await plain.getFeatureFlag('colour', askPlain);
      await Promise.all([a.flush(), plain.flush()]);
      const asked = emulator.flagsRequestCount;
      await b.getFeatureFlag('colour', ask); // hit in another process: its own event
      await b.getFeatureFlag('colour', ask); // and deduped there too
      await b.flush();
      expect(emulator.flagsRequestCount).toBe(asked);

      const events = await emulator.waitForEvents({
        event: '$feature_flag_called',
        count: 3,
      });
      const ofUser = flagCalls('event-user');
      expect(ofUser).toHaveLength(2);
      expect(flagCalls('plain-user')).toHaveLength(1);
      const [miss, hit] = ofUser as [RecordedEvent, RecordedEvent];
      expect(hit.properties).toEqual(miss.properties);
      expect(hit.properties.$feature_flag).toBe('colour');
      expect(hit.properties.$groups).toEqual({ company: 'acme' });
      // The same set of properties posthog-node sends without the cache.
      const plainEvent = flagCalls('plain-user')[0] as RecordedEvent;
      expect(Object.keys(hit.properties).sort()).toEqual(Object.keys(plainEvent.properties).sort());
      expect(events.length).toBeGreaterThanOrEqual(3);
    });

    it('flag events off: a hit sends nothing, and the entry still keeps its event for a read that sends one', async () => {
      const prefix = uniquePrefix('quiet');
      const kit = cached(prefix);
      await kit.getFeatureFlag('everyone', {
        distinctId: 'quiet-user',
        sendFeatureFlagEvents: false,
      });
      await kit.getFeatureFlag('everyone', {
        distinctId: 'quiet-user',
        sendFeatureFlagEvents: false,
      });
      expect(emulator.flagsRequestCount).toBe(1);
      await kit.flush();
      expect(flagCalls('quiet-user')).toHaveLength(0);
      await kit.getFeatureFlag('everyone', { distinctId: 'quiet-user' });
      await kit.getFeatureFlag('everyone', { distinctId: 'quiet-user' });
      expect(emulator.flagsRequestCount).toBe(1);
      await kit.flush();
      await emulator.waitForEvents({ event: '$feature_flag_called', count: 1 });
      expect(flagCalls('quiet-user')).toHaveLength(1);
      expect(flagCalls('quiet-user')[0]?.properties).toMatchObject({
        $feature_flag: 'everyone',
        $feature_flag_response: true,
      });
    });

    it('"no such flag" is cached with flag events on and off; payload reads are cached', async () => {
      const prefix = uniquePrefix('missing');
      for (const sendFeatureFlagEvents of [false, true]) {
        const kit = cached(`${prefix}:${sendFeatureFlagEvents}`);
        emulator.reset();
        const ask = { distinctId: 'nobody', sendFeatureFlagEvents };
        expect(await kit.getFeatureFlag('no-such-flag', ask)).toBeUndefined();
        expect(await kit.getFeatureFlag('no-such-flag', ask)).toBeUndefined();
        expect(await kit.featureEnabled('no-such-flag', ask)).toBe(false);
        expect(emulator.flagsRequestCount, `events ${sendFeatureFlagEvents}`).toBe(1);
        await kit.getFeatureFlagPayload('colour', { distinctId: 'payer' });
        await kit.getFeatureFlagPayload('colour', { distinctId: 'payer' });
        expect(emulator.flagsRequestCount).toBe(2);
      }
    });

    it('never caches a failed request, and never hides overrides', async () => {
      const prefix = uniquePrefix('failures');
      const kit = cached(prefix, { logger: memoryLogger() });
      emulator.fault('flags', { status: 500, times: 1 });
      expect(await kit.getFeatureFlag('everyone', { distinctId: 'f' })).toBeUndefined();
      expect(await kit.getFeatureFlag('everyone', { distinctId: 'f' })).toBe(true);
      expect(emulator.flagsRequestCount).toBe(2);
      kit.client?.overrideFeatureFlags({ everyone: false });
      expect(await kit.getFeatureFlag('everyone', { distinctId: 'f' })).toBe(false);
      kit.client?.overrideFeatureFlags(false);
      const asked = emulator.flagsRequestCount;
      expect(await kit.getFeatureFlag('everyone', { distinctId: 'f' })).toBe(true);
      // The override's answer was not cached: the cached `true` from before answers.
      expect(emulator.flagsRequestCount).toBe(asked);
    });
  });
}

describe('posthog-node internals the flag reading relies on', () => {
  it('a snapshot read hands the event posthog-node builds to _captureFlagCalledEventIfNeeded, synchronously', async () => {
    expect(
      typeof (PostHog.prototype as unknown as Record<string, unknown>)
        ._captureFlagCalledEventIfNeeded,
    ).toBe('function');
    const kit = start({});
    const client = kit.client as NonNullable<typeof kit.client>;
    const flags = await client.evaluateFlags('tap-user', { groups: { company: 'acme' } });
    const params = client.readFlag(flags, 'colour');
    expect(params).toMatchObject({
      distinctId: 'tap-user',
      key: 'colour',
      groups: { company: 'acme' },
      properties: { $feature_flag: 'colour', locally_evaluated: false },
    });
    expect(params?.properties.$feature_flag_response).toBe(params?.response);
    expect(params?.properties['$feature/colour']).toBe(
      flags.getFlag('colour', { sendFeatureFlagEvents: false }),
    );
    // Taken, not sent; sending it goes through posthog-node's dedupe, once.
    await kit.flush();
    expect(flagCalls('tap-user')).toHaveLength(0);
    client.sendFlagCalled(params as NonNullable<typeof params>, () => ({
      $current_url: 'http://x.test/',
    }));
    client.sendFlagCalled(params as NonNullable<typeof params>);
    await kit.flush();
    expect(flagCalls('tap-user')).toHaveLength(1);
    expect(flagCalls('tap-user')[0]?.properties.$current_url).toBe('http://x.test/');
  });
});

describe('posthog-node calls the definitions provider in the order the kit relies on', () => {
  it('start: shouldFetch then receive (leader) or read (follower); 304: nothing more; stop: shutdown', async () => {
    const { SharedFlagDefinitions } = await import('../src/flags/definitions-cache.ts');
    const proto = SharedFlagDefinitions.prototype as unknown as Record<string, unknown>;
    const names = [
      'shouldFetchFlagDefinitions',
      'getFlagDefinitions',
      'onFlagDefinitionsReceived',
      'shutdown',
    ];
    // Each provider's calls, from the first one (made inside posthog-node's constructor).
    const calls = new Map<object, string[]>();
    const originals = names.map((name) => proto[name] as (...args: unknown[]) => unknown);
    names.forEach((name, i) => {
      proto[name] = function (this: object, ...args: unknown[]) {
        calls.set(this, [...(calls.get(this) ?? []), name]);
        return originals[i]?.apply(this, args);
      };
    });
    try {
      const shared = new Keyv();
      const options = {
        cache: shared,
        personalApiKey: emulator.personalApiKey,
        pollIntervalMs: 100,
        flagDefinitionsLockTtlMs: 5_000,
        flagDefinitionsCachePrefix: uniquePrefix('order'),
      };
      const leader = start(options);
      expect(
        await leader.getFeatureFlag('everyone', { distinctId: 'o', onlyEvaluateLocally: true }),
      ).toBe(true);
      const follower = start(options);
      expect(
        await follower.getFeatureFlag('everyone', { distinctId: 'o', onlyEvaluateLocally: true }),
      ).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 250));
      await leader.shutdown(1_000);
      const ofLeader = calls.get(leader.flags?.definitions as object) ?? [];
      const ofFollower = calls.get(follower.flags?.definitions as object) ?? [];
      expect(ofLeader.slice(0, 2)).toEqual([
        'shouldFetchFlagDefinitions',
        'onFlagDefinitionsReceived',
      ]);
      // Later polls get 304s: posthog-node asks, fetches, and calls nothing else.
      const polls = ofLeader.slice(2, -1);
      expect(polls.length).toBeGreaterThan(0);
      expect(new Set(polls)).toEqual(new Set(['shouldFetchFlagDefinitions']));
      expect(ofLeader.at(-1)).toBe('shutdown');
      expect(emulator.definitionsNotModifiedCount).toBeGreaterThan(0);
      expect(ofFollower.slice(0, 2)).toEqual(['shouldFetchFlagDefinitions', 'getFlagDefinitions']);
    } finally {
      names.forEach((name, i) => {
        proto[name] = originals[i];
      });
    }
  });
});

describe('a store that never answers', () => {
  it('costs one store timeout once, then nothing; flags stay right; one log line', async () => {
    const logger = memoryLogger();
    const kit = start({
      cache: hangingStore(),
      personalApiKey: emulator.personalApiKey,
      featureFlagsCacheTtlMs: 60_000,
      pollIntervalMs: 200,
      logger,
    });
    let t0 = performance.now();
    expect(
      await kit.getFeatureFlag('everyone', { distinctId: 'h1', onlyEvaluateLocally: true }),
    ).toBe(true);
    const first = performance.now() - t0;
    expect(first).toBeLessThan(STORE_TIMEOUT_MS * 3);
    let slowest = 0;
    for (let i = 0; i < 20; i++) {
      t0 = performance.now();
      expect(
        await kit.getFeatureFlag('everyone', { distinctId: `h${i}`, onlyEvaluateLocally: true }),
      ).toBe(true);
      slowest = Math.max(slowest, performance.now() - t0);
    }
    expect(slowest).toBeLessThan(50);
    expect(logger.lines.filter((l) => l.includes('is failing'))).toHaveLength(1);
    expect(emulator.definitionsFetchCount).toBeGreaterThanOrEqual(1);
    t0 = performance.now();
    await kit.shutdown(1_000);
    expect(performance.now() - t0).toBeLessThan(1_100);
  });
});
