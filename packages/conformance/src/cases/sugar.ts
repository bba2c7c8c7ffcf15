import type { Suite } from '../harness.ts';

/** The module-level sugar and the request slot, requestFilter, and an app without the adapter. */
export function sugarCases({ t, start, get, events, kit }: Suite): void {
  const { it, expect } = t;
  it('capture and featureEnabled, module level and through the request slot', async () => {
    const app = await start({ kit: kit() });
    const res = await get(app, '/flag', { 'x-posthog-distinct-id': 'flag-user' });
    expect(await res.json()).toEqual({ module: true, slot: true });
    await get(app, '/capture', { 'x-posthog-distinct-id': 'cap-user' });
    const all = await events();
    expect(all.filter((e) => e.event === '$feature_flag_called').map((e) => e.distinctId)).toEqual([
      'flag-user',
    ]);
    expect(
      all
        .filter((e) => e.event.endsWith('_event'))
        .map((e) => [e.event, e.distinctId, e.properties.via]),
    ).toEqual([
      ['module_event', 'cap-user', 'module'],
      ['slot_event', 'cap-user', 'slot'],
    ]);
  });

  it('requestFilter false: no context, no capture, the handler still runs', async () => {
    const app = await start({
      kit: kit(),
      requestFilter: (req) => req.path !== '/health',
      captureViews: true,
    });
    const res = await get(app, '/health', { 'x-posthog-distinct-id': 'u' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ healthy: true });
    expect(await events()).toEqual([]);
  });

  it('a handle miss: without the adapter the slot is absent and the sugar never throws', async () => {
    const app = await start(false);
    const res = await get(app, '/capture', { 'x-posthog-distinct-id': 'nobody' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    expect(await events()).toEqual([]);
  });
}
