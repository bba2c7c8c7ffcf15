// The memo of local evaluations: the same inputs answered from memory until the
// definitions change, with `$feature_flag_called` recorded exactly as posthog-node does.
import { flag, type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { PostHog } from 'posthog-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PostHogKit, PostHogKitOptions } from '../src/index.ts';
import { kitFor } from './helpers.ts';

let emulator: PostHogEmulator;
const kits: PostHogKit[] = [];
const FLAGS = [
  flag('exp', { variants: { control: 50, test: 50 } }),
  flag('pro', { conditions: [{ properties: [{ key: 'plan', value: 'pro' }] }] }),
];

beforeAll(async () => {
  emulator = await startEmulator({ flags: FLAGS });
});
afterAll(async () => {
  await Promise.all(kits.map((k) => k.shutdown(1_000)));
  await emulator.close();
});
beforeEach(() => {
  emulator.reset();
  emulator.setFlags(FLAGS);
});

async function localKit(options: PostHogKitOptions = {}): Promise<PostHogKit> {
  const kit = kitFor(emulator, { personalApiKey: emulator.personalApiKey, ...options });
  kits.push(kit);
  await kit.client?.waitForLocalEvaluationReady(5_000);
  return kit;
}

// Every posthog-node evaluation the kit makes goes through evaluateFlags (its non-deprecated API).
const calls = (kit: PostHogKit) => vi.spyOn(kit.client as PostHog, 'evaluateFlags');

describe('local evaluation memo', () => {
  it('answers the same inputs from memory; other inputs are evaluated', async () => {
    const kit = await localKit();
    const spy = calls(kit);
    const first = await kit.getFeatureFlag('exp', { distinctId: 'u1' });
    for (let i = 0; i < 5; i++)
      expect(await kit.getFeatureFlag('exp', { distinctId: 'u1' })).toBe(first);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(await kit.featureEnabled('pro', { distinctId: 'u1' })).toBe(false);
    expect(
      await kit.featureEnabled('pro', { distinctId: 'u1', personProperties: { plan: 'pro' } }),
    ).toBe(true);
    expect(spy).toHaveBeenCalledTimes(3);
  });

  it('records $feature_flag_called as posthog-node alone does: same events, same properties', async () => {
    const kit = await localKit();
    const plain = new PostHog(emulator.projectApiKey, {
      host: emulator.url,
      secretKey: emulator.personalApiKey,
      fetchRetryCount: 0,
    });
    await plain.waitForLocalEvaluationReady(5_000);
    const users = ['a', 'b', 'a', 'c', 'b', 'a'];
    for (const u of users) await kit.getFeatureFlag('exp', { distinctId: `kit-${u}` });
    for (const u of users)
      (await plain.evaluateFlags(`node-${u}`, { flagKeys: ['exp'] })).getFlag('exp');
    await kit.flush();
    await plain.shutdown(1_000);
    const called = (prefix: string) =>
      emulator.events
        .filter((e) => e.event === '$feature_flag_called' && e.distinctId.startsWith(prefix))
        .map((e) => ({
          user: e.distinctId.slice(prefix.length),
          keys: Object.keys(e.properties)
            .filter((k) => !k.startsWith('$lib'))
            .sort(),
          response: e.properties.$feature_flag_response,
          locally: e.properties.locally_evaluated,
        }));
    expect(called('kit-')).toHaveLength(3);
    expect(called('kit-').map(({ keys, locally }) => ({ keys, locally }))).toEqual(
      called('node-').map(({ keys, locally }) => ({ keys, locally })),
    );
  });

  it('with the flag result cache on, hits come from the memo and exposures still go out once per user', async () => {
    const kit = await localKit({ featureFlagsCacheTtlMs: 60_000 });
    const spy = calls(kit);
    const users = ['a', 'b', 'a', 'c', 'b', 'a', 'c', 'a'];
    const answers = new Map<string, unknown>();
    for (const u of users) {
      const answer = await kit.getFeatureFlag('exp', { distinctId: `cached-${u}` });
      if (answers.has(u)) expect(answer).toBe(answers.get(u));
      answers.set(u, answer);
    }
    // One posthog-node evaluation per user: the second call of a user is a memo hit.
    expect(spy).toHaveBeenCalledTimes(3);
    await kit.flush();
    const called = emulator.events.filter(
      (e) => e.event === '$feature_flag_called' && e.distinctId.startsWith('cached-'),
    );
    expect(called.map((e) => e.distinctId).sort()).toEqual(['cached-a', 'cached-b', 'cached-c']);
  });

  it("a remembered answer's exposure goes through posthog-node's dedupe once, not on every read", async () => {
    const kit = await localKit();
    // posthog-node's own method (the kit's client calls it through super).
    const dedupe = vi.spyOn(
      PostHog.prototype as unknown as { _captureFlagCalledEventIfNeeded(p: unknown): void },
      '_captureFlagCalledEventIfNeeded',
    );
    try {
      for (let i = 0; i < 20; i++) await kit.getFeatureFlag('exp', { distinctId: 'repeat' });
      const asked = dedupe.mock.calls.filter(
        ([params]) => (params as { distinctId?: string }).distinctId === 'repeat',
      );
      // The evaluation's answer, then the memo's copy of it; then nothing: the dedupe would drop it.
      expect(asked).toHaveLength(2);
    } finally {
      dedupe.mockRestore();
    }
    await kit.flush();
    expect(
      emulator.events.filter(
        (e) => e.event === '$feature_flag_called' && e.distinctId === 'repeat',
      ),
    ).toHaveLength(1);
  });

  it('forgets what it kept at least once per poll interval (conditions on dates move with time)', async () => {
    const kit = await localKit({ pollIntervalMs: 1_000 });
    const spy = calls(kit);
    await kit.getFeatureFlag('exp', { distinctId: 'aging' });
    const before = spy.mock.calls.length;
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    await kit.getFeatureFlag('exp', { distinctId: 'aging' });
    expect(spy.mock.calls.length).toBe(before + 1);
  });

  it('a user evaluated once without events still gets their exposure event later', async () => {
    const kit = await localKit();
    await kit.getFeatureFlag('exp', { distinctId: 'quiet', sendFeatureFlagEvents: false });
    await kit.getFeatureFlag('exp', { distinctId: 'quiet' });
    await kit.flush();
    expect(emulator.events.filter((e) => e.event === '$feature_flag_called')).toHaveLength(1);
  });

  it('is forgotten when posthog-node loads new definitions', async () => {
    const kit = await localKit();
    expect(
      await kit.featureEnabled('pro', { distinctId: 'u', personProperties: { plan: 'pro' } }),
    ).toBe(true);
    emulator.setFlags([flag('pro', { active: false }), FLAGS[0] as ReturnType<typeof flag>]);
    await kit.client?.reloadFeatureFlags();
    expect(
      await kit.featureEnabled('pro', { distinctId: 'u', personProperties: { plan: 'pro' } }),
    ).toBe(false);
  });

  it('a flag the local definitions do not have is missing without asking PostHog, until they change', async () => {
    const kit = await localKit();
    const spy = calls(kit);
    expect(await kit.getFeatureFlag('not-defined-locally', { distinctId: 'u' })).toBeUndefined();
    expect(await kit.getFeatureFlag('not-defined-locally', { distinctId: 'u' })).toBeUndefined();
    expect(emulator.flagsRequestCount).toBe(0);
    expect(spy).toHaveBeenCalledTimes(1);
    emulator.setFlags([...FLAGS, flag('not-defined-locally', { rollout: 100 })]);
    await kit.client?.reloadFeatureFlags();
    expect(await kit.getFeatureFlag('not-defined-locally', { distinctId: 'u' })).toBe(true);
  });

  it('keeps nothing while flag overrides are set', async () => {
    const kit = await localKit();
    const spy = calls(kit);
    kit.client?.overrideFeatureFlags({ exp: 'forced' });
    expect(await kit.getFeatureFlag('exp', { distinctId: 'u' })).toBe('forced');
    expect(await kit.getFeatureFlag('exp', { distinctId: 'u' })).toBe('forced');
    expect(spy).toHaveBeenCalledTimes(2);
    kit.client?.overrideFeatureFlags(false);
    expect(['control', 'test']).toContain(await kit.getFeatureFlag('exp', { distinctId: 'u' }));
  });
});
