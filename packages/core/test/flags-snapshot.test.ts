// Flags the way posthog-node now wants them: `evaluateFlags()` snapshots (lazy), one
// consistent state per request, the flags read on the request's events, `$feature_flag_called`
// with the request's context, one `/flags` request per request, and no deprecated
// posthog-node call. Real posthog-node against the emulator, requests through RequestTracker.
import {
  flag,
  type PostHogEmulator,
  type RecordedEvent,
  startEmulator,
} from '@posthog-kit/testing';
import type { PostHog } from 'posthog-node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  capture,
  captureException,
  evaluateFlags,
  featureEnabled,
  getAllFlags,
  getFeatureFlag,
  getFeatureFlagPayload,
  getFeatureFlagResult,
  type PostHogHandle,
  type PostHogKit,
  type PostHogKitOptions,
  type RequestInfo,
  RequestTracker,
  withContext,
} from '../src/index.ts';
import { kitFor, memoryLogger } from './helpers.ts';

const FLAGS = [
  flag('on', { rollout: 100 }),
  flag('off', { rollout: 0 }),
  flag('colour', { variants: { red: 50, blue: 50 }, payloads: { red: { hex: '#f00' } } }),
  flag('pro', { conditions: [{ properties: [{ key: 'plan', value: 'pro' }] }] }),
  flag('config', { rollout: 100, payloads: { true: { limit: 3 } } }),
];

// posthog-node warns once per deprecated method it is called through: none may appear.
const deprecations: string[] = [];
const warn = console.warn;
console.warn = (...args: unknown[]) => {
  if (/deprecated/i.test(String(args[0]))) deprecations.push(String(args[0]));
  warn(...args);
};

let emulator: PostHogEmulator;
const kits: PostHogKit[] = [];
beforeAll(async () => {
  emulator = await startEmulator({ flags: FLAGS });
});
afterAll(async () => {
  console.warn = warn;
  await emulator.close();
});
beforeEach(() => {
  emulator.reset();
  emulator.setFlags(FLAGS);
});
afterEach(async () => {
  await Promise.all(kits.splice(0).map((k) => k.shutdown(1_000)));
  expect(deprecations, 'deprecated posthog-node calls').toEqual([]);
});

function start(options: PostHogKitOptions = {}): PostHogKit {
  const kit = kitFor(emulator, {
    ...options,
    clientOptions: { flushAt: 10_000, flushInterval: 0, ...options.clientOptions },
  });
  kits.push(kit);
  return kit;
}

async function local(options: PostHogKitOptions = {}): Promise<PostHogKit> {
  const kit = start({ personalApiKey: emulator.personalApiKey, ...options });
  await kit.client?.waitForLocalEvaluationReady(5_000);
  return kit;
}

const info = (path: string, headers: Record<string, string> = {}): RequestInfo => ({
  method: 'GET',
  url: `http://app.test${path}?q=1`,
  path,
  ip: '203.0.113.9',
  raw: undefined,
  header: (name) => headers[name],
});

/** One request through core's tracker: the handler gets the handle; errors are reported. */
async function request<T>(
  kit: PostHogKit,
  handler: (handle: PostHogHandle) => Promise<T> | T,
  options: { id?: string; captureViews?: boolean; path?: string } = {},
): Promise<T | undefined> {
  const tracker = new RequestTracker({ kit, captureViews: options.captureViews });
  const scope = tracker.start(
    info(options.path ?? '/things/1', {
      'x-posthog-distinct-id': options.id ?? 'user-1',
      'x-posthog-session-id': 'session-1',
    }),
  );
  try {
    const value = await tracker.run(scope, () => handler(scope.posthog));
    tracker.end(scope, 200, '/things/:id');
    return value;
  } catch (error) {
    tracker.captureError(scope, error);
    tracker.end(scope, 500, '/things/:id');
    return undefined;
  }
}

async function sent(kit: PostHogKit): Promise<readonly RecordedEvent[]> {
  await kit.flush();
  return emulator.events;
}
const named = (events: readonly RecordedEvent[], name: string) =>
  events.filter((e) => e.event === name);
const flagProps = (e: RecordedEvent | undefined) =>
  Object.fromEntries(
    Object.entries(e?.properties ?? {}).filter(
      ([k]) => k.startsWith('$feature/') || k === '$active_feature_flags',
    ),
  );

describe('evaluateFlags: a lazy snapshot, posthog-node-shaped', () => {
  it('on the module, a kit and a handle; reads, payloads, only, onlyAccessed, capture({ flags })', async () => {
    const kit = await local();
    const flags = await kit.evaluateFlags({ distinctId: 'snap-user' });
    expect(await flags.isEnabled('on')).toBe(true);
    expect(await flags.isEnabled('off')).toBe(false);
    expect(await flags.isEnabled('missing', { defaultValue: true })).toBe(true);
    expect(await flags.getFlag('missing')).toBeUndefined();
    expect(await flags.getFlagPayload('config')).toEqual({ limit: 3 });
    const colour = await flags.getFlag('colour');
    expect(['red', 'blue']).toContain(colour);
    kit.capture('with_accessed', { distinctId: 'snap-user', flags: flags.onlyAccessed() });
    kit.capture('with_only', { distinctId: 'snap-user', flags: await flags.only(['pro', 'on']) });
    // posthog-node's own snapshot is accepted as it is.
    const node = await (kit.client as PostHog).evaluateFlags('snap-user', { flagKeys: ['on'] });
    kit.capture('with_node', { distinctId: 'snap-user', flags: node });
    const events = await sent(kit);
    expect(flagProps(named(events, 'with_accessed')[0])).toEqual({
      '$feature/on': true,
      '$feature/off': false,
      '$feature/colour': colour,
      $active_feature_flags: ['colour', 'on'],
    });
    expect(flagProps(named(events, 'with_only')[0])).toEqual({
      '$feature/on': true,
      '$feature/pro': false,
      $active_feature_flags: ['on'],
    });
    expect(flagProps(named(events, 'with_node')[0])).toEqual({
      '$feature/on': true,
      $active_feature_flags: ['on'],
    });
    // Reads send $feature_flag_called (payloads and `only` do not), once per flag.
    expect(
      named(events, '$feature_flag_called')
        .map((e) => e.properties.$feature_flag)
        .sort(),
    ).toEqual(['colour', 'missing', 'off', 'on']);

    const tracker = new RequestTracker({ kit });
    const scope = tracker.start(info('/h', { 'x-posthog-distinct-id': 'handle-user' }));
    await tracker.run(scope, async () => {
      const viaModule = await evaluateFlags();
      const viaHandle = await scope.posthog.evaluateFlags();
      expect(await viaModule.isEnabled('on')).toBe(true);
      expect(await viaHandle.getFlag('off')).toBe(false);
    });
  });

  it('evaluates a flag when it is first read: 200 definitions, one read, one flag evaluated', async () => {
    emulator.setFlags([
      ...FLAGS,
      ...Array.from({ length: 200 }, (_, i) => flag(`many-${i}`, { rollout: 50 })),
    ]);
    const kit = await local();
    const spy = vi.spyOn(kit.client as PostHog, 'evaluateFlags');
    const flags = await kit.evaluateFlags({ distinctId: 'lazy-user' });
    expect(spy).not.toHaveBeenCalled();
    await flags.isEnabled('many-7');
    await flags.isEnabled('many-7');
    expect(spy).toHaveBeenCalledTimes(1);
    expect(spy.mock.calls[0]?.[1]).toMatchObject({ flagKeys: ['many-7'] });
    const all = await kit.getAllFlags({ distinctId: 'lazy-user' });
    expect(Object.keys(all)).toHaveLength(205);
  });

  it('flagKeys: other flags read as undefined', async () => {
    const kit = await local();
    const flags = await kit.evaluateFlags({ distinctId: 'u', flagKeys: ['on'] });
    expect(await flags.isEnabled('on')).toBe(true);
    expect(await flags.getFlag('colour')).toBeUndefined();
  });

  it('a disabled kit or no distinct id: an empty snapshot, no throw', async () => {
    const off = kitFor(emulator, { enabled: false });
    const flags = await off.evaluateFlags({ distinctId: 'u' });
    expect(await flags.isEnabled('on')).toBe(false);
    expect(await (await start().evaluateFlags()).getFlag('on')).toBeUndefined();
  });
});

describe('inside one request', () => {
  it('reads are consistent even when the definitions change mid-request', async () => {
    const kit = await local();
    const values = await request(kit, async () => {
      const first = await featureEnabled('pro', { personProperties: { plan: 'pro' } });
      emulator.setFlags(FLAGS.map((f) => (f.key === 'pro' ? flag('pro', { active: false }) : f)));
      await kit.client?.reloadFeatureFlags();
      const again = await featureEnabled('pro', { personProperties: { plan: 'pro' } });
      const snapshot = await evaluateFlags({ personProperties: { plan: 'pro' } });
      return [first, again, await snapshot.isEnabled('pro')];
    });
    expect(values).toEqual([true, true, true]);
    // The next request sees the new definitions.
    expect(
      await request(kit, () => featureEnabled('pro', { personProperties: { plan: 'pro' } })),
    ).toBe(false);
  });

  it('remote evaluation: one /flags request serves every flag read of the request', async () => {
    const kit = start();
    const answers = await request(kit, async (handle) => {
      const read = [
        await featureEnabled('on'),
        await getFeatureFlag('colour'),
        (await getFeatureFlagResult('config'))?.payload,
        await getFeatureFlagPayload('colour'),
        await handle.featureEnabled('off'),
        await (await evaluateFlags()).getFlag('pro'),
        Object.keys(await getAllFlags()).length,
      ];
      await Promise.all(['on', 'off', 'pro', 'x', 'y'].map((k) => featureEnabled(k)));
      return read;
    });
    expect(answers?.[0]).toBe(true);
    expect(answers?.[2]).toEqual({ limit: 3 });
    expect(answers?.[4]).toBe(false);
    expect(answers?.[6]).toBeGreaterThan(0);
    expect(emulator.flagsRequestCount).toBe(1);
    // Another request: its own one.
    await request(kit, () => featureEnabled('on'));
    expect(emulator.flagsRequestCount).toBe(2);
  });

  it("every event of the request carries the flags read in it: capture, captureException, the middleware's $exception, the view", async () => {
    const kit = await local();
    await request(
      kit,
      async (handle) => {
        capture('before_any_read');
        await featureEnabled('on');
        await handle.getFeatureFlag('off');
        await getFeatureFlagPayload('config'); // a payload is not a read for events
        capture('module_event');
        handle.capture('slot_event');
        captureException(new Error('handled'));
        capture('explicit', { flags: await (await evaluateFlags()).only(['colour']) });
        capture('overridden', { properties: { '$feature/on': 'mine' } });
        await withContext({ distinctId: 'someone-else' }, async () => {
          capture('other_user');
          await featureEnabled('colour');
          capture('other_user_after_read');
        });
        throw new Error('boom');
      },
      { captureViews: true },
    );
    const events = await sent(kit);
    const read = { '$feature/on': true, '$feature/off': false, $active_feature_flags: ['on'] };
    expect(flagProps(named(events, 'before_any_read')[0])).toEqual({});
    for (const name of ['module_event', 'slot_event', '$pageview']) {
      expect(flagProps(named(events, name)[0]), name).toEqual(read);
    }
    const exceptions = named(events, '$exception');
    expect(exceptions).toHaveLength(2);
    for (const e of exceptions) expect(flagProps(e)).toEqual(read);
    expect(Object.keys(flagProps(named(events, 'explicit')[0]))).toEqual(
      expect.arrayContaining(['$feature/colour']),
    );
    expect(flagProps(named(events, 'explicit')[0])['$feature/on']).toBeUndefined();
    expect(named(events, 'overridden')[0]?.properties['$feature/on']).toBe('mine');
    expect(flagProps(named(events, 'other_user')[0])).toEqual({});
    expect(Object.keys(flagProps(named(events, 'other_user_after_read')[0]))).toEqual(
      expect.arrayContaining(['$feature/colour']),
    );
  });

  it('featureFlagsOnEvents: false puts no flag on the events', async () => {
    const kit = await local({ featureFlagsOnEvents: false });
    await request(kit, async () => {
      await featureEnabled('on');
      capture('plain');
    });
    expect(flagProps(named(await sent(kit), 'plain')[0])).toEqual({});
  });

  it("$feature_flag_called carries the request's context", async () => {
    for (const kit of [await local(), start()]) {
      emulator.reset();
      await request(kit, async (handle) => {
        handle.tag('plan_tier', 'gold');
        await featureEnabled('on');
      });
      const called = named(await sent(kit), '$feature_flag_called');
      expect(called).toHaveLength(1);
      expect(called[0]?.properties).toMatchObject({
        $feature_flag: 'on',
        $feature_flag_response: true,
        $session_id: 'session-1',
        $current_url: 'http://app.test/things/1?q=1',
        $ip: '203.0.113.9',
        $request_path: '/things/1',
        plan_tier: 'gold',
      });
    }
  });

  it('the deprecated sendFeatureFlags of ours still works, without posthog-node deprecated path', async () => {
    const kit = await local();
    kit.capture('legacy', { distinctId: 'legacy-user', sendFeatureFlags: true });
    await kit.flush();
    const event = named(await sent(kit), 'legacy')[0];
    expect(event?.properties['$feature/on']).toBe(true);
    expect(event?.properties['$feature/off']).toBe(false);
  });
});

describe('the latency budget of flag reads on the request path', () => {
  it('/flags hung: reads answer their defaults within the budget, the rest of the request is fast, one line, one open request', async () => {
    const logger = memoryLogger();
    const kit = start({ featureFlagsBudgetMs: 150, logger });
    emulator.fault('flags', { delayMs: 2_000, times: 1 });
    let t0 = performance.now();
    const first = await request(kit, async () => {
      const on = await featureEnabled('on');
      const t1 = performance.now();
      const more = [await featureEnabled('on'), await getFeatureFlag('colour')];
      return { on, more, rest: performance.now() - t1 };
    });
    const elapsed = performance.now() - t0;
    expect(first?.on).toBe(false);
    expect(first?.more).toEqual([false, undefined]);
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(600);
    expect(first?.rest).toBeLessThan(20);
    // While PostHog is out, other requests answer at once, without another /flags request.
    t0 = performance.now();
    for (let i = 0; i < 5; i++) expect(await request(kit, () => featureEnabled('on'))).toBe(false);
    expect(performance.now() - t0).toBeLessThan(100);
    expect(emulator.flagsRequestCount).toBe(1);
    expect(logger.lines.filter((l) => l.includes('flag budget'))).toHaveLength(1);
    // No exposure event for a default the code got because of the budget.
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    expect(named(await sent(kit), '$feature_flag_called')).toHaveLength(0);
    // PostHog answers again: the next request asks, gets the real answer, and it is said.
    expect(await request(kit, () => featureEnabled('on'))).toBe(true);
    expect(logger.lines.some((l) => l.includes('within the budget again'))).toBe(true);
  });

  it('slow but within the budget: the real answer', async () => {
    const kit = start({ featureFlagsBudgetMs: 1_000 });
    emulator.fault('flags', { delayMs: 100, times: 1 });
    expect(await request(kit, () => featureEnabled('on'))).toBe(true);
  });

  it('local evaluation never waits on the budget; outside a request there is none', async () => {
    const kit = await local({ featureFlagsBudgetMs: 50 });
    emulator.fault('flags', { delayMs: 300 });
    expect(await request(kit, () => featureEnabled('on'))).toBe(true);
    // A flag local definitions do not have asks PostHog: the default after the budget.
    expect(await request(kit, () => getFeatureFlag('not-defined-here'))).toBeUndefined();
    const remote = start({ featureFlagsBudgetMs: 50 });
    expect(await remote.featureEnabled('on', { distinctId: 'script' })).toBe(true);
    emulator.clearFaults();
  });
});
