import { capture, evaluateFlags, featureEnabled, getAllFlags } from '@posthog-kit/core';
import type { Suite } from '../harness.ts';
import type { RouteSpec } from '../types.ts';

/** Routes that read flags, then capture or throw (the suite's emulator has `beta`, on for all). */
const flagRoutes: RouteSpec[] = [
  {
    method: 'GET',
    path: '/flags/read',
    handler: async ({ posthog }) => {
      const read = [
        await featureEnabled('beta'),
        (await posthog?.getFeatureFlag('beta')) ?? null,
        await (await evaluateFlags()).isEnabled('beta'),
        Object.keys(await getAllFlags()).length,
        await featureEnabled('not-defined'),
      ];
      capture('after_flags');
      posthog?.capture('after_flags_slot');
      return { body: { read } };
    },
  },
  {
    method: 'GET',
    path: '/flags/boom',
    handler: async () => {
      await featureEnabled('beta');
      throw new Error('flag boom');
    },
  },
];

/** Flags in a request: one `/flags` request serves every read, and its events carry them. */
export function flagCases({ t, bridge, events, kit, emulator }: Suite): void {
  const { it, expect } = t;
  const serve = async <T>(fn: (url: string) => Promise<T>): Promise<T> => {
    const app = await bridge.start({
      posthog: { kit: kit(), captureViews: true },
      routes: flagRoutes,
    });
    try {
      return await fn(app.url);
    } finally {
      await app.close();
    }
  };
  const headers = {
    'x-posthog-distinct-id': 'flag-reader',
    'x-posthog-session-id': 'flag-session',
  };

  it('remote evaluation: one /flags request per request, however many flags it reads', async () => {
    await serve(async (url) => {
      const res = await fetch(`${url}/flags/read`, { headers });
      expect(await res.json()).toEqual({ read: [true, true, true, 1, false] });
      expect(emulator().flagsRequestCount).toBe(1);
      await fetch(`${url}/flags/read`, { headers });
      expect(emulator().flagsRequestCount).toBe(2);
    });
  });

  it('flags read in a request are on its events: capture, the slot, the view, the $exception', async () => {
    await serve(async (url) => {
      await fetch(`${url}/flags/read`, { headers });
      expect((await fetch(`${url}/flags/boom`, { headers })).status).toBe(500);
    });
    const all = await events();
    const carried = ['after_flags', 'after_flags_slot', '$pageview', '$exception'].map((name) => {
      const event = all.find((e) => e.event === name);
      return [name, event?.properties['$feature/beta'], event?.properties.$active_feature_flags];
    });
    expect(carried).toEqual([
      ['after_flags', true, ['beta']],
      ['after_flags_slot', true, ['beta']],
      ['$pageview', true, ['beta']],
      ['$exception', true, ['beta']],
    ]);
    const called = all.filter((e) => e.event === '$feature_flag_called');
    expect(called.length).toBeGreaterThan(0);
    for (const e of called) {
      expect(e.distinctId).toBe('flag-reader');
      expect(e.properties.$session_id).toBe('flag-session');
      expect(String(e.properties.$current_url)).toContain('/flags/');
    }
  });
}
