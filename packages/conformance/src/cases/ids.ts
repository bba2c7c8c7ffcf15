import type { Suite } from '../harness.ts';

/** Distinct and session ids: tracing headers, the resolved user, a custom resolver, the cookie. */
export function idCases({ t, start, get, events, kit, emulator }: Suite): void {
  const { it, expect } = t;
  it('distinct and session id come from the tracing headers, sanitised', async () => {
    const app = await start({ kit: kit() });
    await get(app, '/capture', {
      'X-POSTHOG-DISTINCT-ID': ' \t user-1 \t',
      'X-POSTHOG-SESSION-ID': 'sess-1',
    });
    await get(app, '/items/1', { 'x-posthog-distinct-id': 'x'.repeat(1500) });
    const all = await events();
    for (const e of all.filter((e) => e.event.endsWith('_event'))) {
      expect(e.distinctId).toBe('user-1');
      expect(e.properties.$session_id).toBe('sess-1');
    }
    expect(all.find((e) => e.event === 'item_viewed')?.distinctId).toBe('x'.repeat(1000));
  });

  it('without headers, the resolved user gives the id and the email tag', async () => {
    const app = await start({ kit: kit() });
    await get(app, '/capture', {
      'x-test-user': JSON.stringify({ id: 42, email: 'ada@example.com' }),
    });
    const all = (await events()).filter((e) => e.event.endsWith('_event'));
    expect(all).toHaveLength(2);
    for (const e of all) {
      expect(e.distinctId).toBe('42');
      expect(e.properties.email).toBe('ada@example.com');
    }
  });

  it('a custom resolveUser replaces the default', async () => {
    const app = await start({
      kit: kit(),
      resolveUser: (req) => ({ id: `custom-${req.header('x-account')}` }),
    });
    await get(app, '/capture', { 'x-account': '9' });
    const all = (await events()).filter((e) => e.event.endsWith('_event'));
    expect(all.map((e) => e.distinctId)).toEqual(['custom-9', 'custom-9']);
  });

  it('preferAuthenticatedUser: the signed-in user wins over a client-supplied header', async () => {
    const app = await start({ kit: kit(), preferAuthenticatedUser: true });
    const user = JSON.stringify({ id: 'real-7' });
    await get(app, '/capture', { 'x-posthog-distinct-id': 'spoofed', 'x-test-user': user });
    await get(app, '/items/2', { 'x-posthog-distinct-id': 'anonymous-visitor' });
    const all = await events();
    expect(all.filter((e) => e.event.endsWith('_event')).map((e) => e.distinctId)).toEqual([
      'real-7',
      'real-7',
    ]);
    // Without a user the header still gives the id.
    expect(all.find((e) => e.event === 'item_viewed')?.distinctId).toBe('anonymous-visitor');
  });

  it("readPostHogCookie: posthog-js's cookie gives the identified id and the session", async () => {
    const app = await start({ kit: kit(), readPostHogCookie: true });
    const name = `ph_${emulator().projectApiKey}_posthog`;
    const value = encodeURIComponent(
      JSON.stringify({
        distinct_id: 'cookie-user',
        $user_state: 'identified',
        $sesid: [Date.now(), 'cookie-session', Date.now() - 1_000],
      }),
    );
    await get(app, '/items/3', { cookie: `other=1; ${name}=${value}` });
    const event = (await events()).find((e) => e.event === 'item_viewed');
    expect(event?.distinctId).toBe('cookie-user');
    expect(event?.properties.$session_id).toBe('cookie-session');
  });
}
