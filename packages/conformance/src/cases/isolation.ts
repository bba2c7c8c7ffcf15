import { createPostHogKit } from '@posthog-kit/core';
import { comparableBody, comparableHeaders, type Suite } from '../harness.ts';

/** Concurrency, a disabled kit, and the slot without AsyncLocalStorage. */
export function isolationCases({ t, start, get, events, kit, makeKit, emulator }: Suite): void {
  const { it, expect } = t;
  it('1,000 concurrent requests with random awaits: every event has its own request ids', async () => {
    const app = await start({ kit: kit() });
    const count = 1000;
    const responses = await Promise.all(
      Array.from({ length: count }, (_, n) =>
        get(app, `/slow/${n}`, {
          'x-posthog-distinct-id': `user-${n}`,
          'x-posthog-session-id': `s-${n}`,
        }).then((r) => r.status),
      ),
    );
    expect(responses.every((s) => s === 200)).toBe(true);
    const all = await events();
    for (const name of ['slow', 'slow_slot']) {
      const mine = all.filter((e) => e.event === name);
      expect(mine).toHaveLength(count);
      for (const e of mine) {
        const n = e.properties.n;
        expect(e.distinctId).toBe(`user-${n}`);
        expect(e.properties.$session_id).toBe(`s-${n}`);
        expect(e.properties.$request_path).toBe(`/slow/${n}`);
      }
    }
  }, 60_000);

  it('a disabled kit: the app behaves exactly as without the adapter', async () => {
    const disabled = createPostHogKit({ env: {}, host: emulator().url });
    const bare = await start(false);
    const withDisabled = await start({ kit: disabled, captureViews: true });
    for (const path of ['/ok', '/capture', '/flag', '/boom', '/boom/404', '/no/such/route']) {
      const [a, b] = await Promise.all([get(bare, path), get(withDisabled, path)]);
      expect({ path, status: b.status, body: await comparableBody(b, withDisabled) }).toEqual({
        path,
        status: a.status,
        body:
          path === '/flag'
            ? JSON.stringify({ module: false, slot: false })
            : await comparableBody(a, bare),
      });
      // The bare app's slot is absent (null), so /flag's length differs by design.
      if (path !== '/flag') expect(comparableHeaders(b)).toEqual(comparableHeaders(a));
    }
    expect(emulator().requests).toHaveLength(0);
  });

  it('the request slot carries the ids even without AsyncLocalStorage', async () => {
    // A storage that keeps nothing: module-level calls see no context at all.
    const noAls = makeKit({ contextStorage: { run: (_scope, fn) => fn(), get: () => undefined } });
    const app = await start({ kit: noAls });
    await get(app, '/capture', {
      'x-posthog-distinct-id': 'slot-only',
      'x-posthog-session-id': 'sess-x',
    });
    const all = await events(noAls);
    expect(all.find((e) => e.event === 'slot_event')).toMatchObject({
      distinctId: 'slot-only',
      properties: { $session_id: 'sess-x', $request_path: '/capture' },
    });
  });
}
