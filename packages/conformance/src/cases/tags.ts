import type { Suite } from '../harness.ts';

/** The request's tags, extraTags and tagMap, and a context nested inside a handler. */
export function tagCases({ t, bridge, start, get, events, kit }: Suite): void {
  const { it, expect } = t;
  it('$current_url, $request_method, $request_path, $ip, $user_agent on events of a handler', async () => {
    const app = await start({ kit: kit() });
    await get(app, '/items/7?ref=mail', {
      'user-agent': 'conformance/1',
      'x-posthog-distinct-id': 'u',
    });
    const event = (await events()).find((e) => e.event === 'item_viewed');
    expect(event?.properties).toMatchObject({
      $current_url: `${app.url}/items/7?ref=mail`,
      $request_method: 'GET',
      $request_path: '/items/7',
      $user_agent: 'conformance/1',
      item: '7',
    });
    if (!bridge.skip?.clientIp) expect(String(event?.properties.$ip)).toMatch(/127\.0\.0\.1|::1/);
  });

  it('extraTags and tagMap', async () => {
    const app = await start({
      kit: kit(),
      extraTags: (req) => ({ tenant: req.header('x-tenant') ?? 'none' }),
      tagMap: (tags) => ({ ...tags, $user_agent: undefined, mapped: 'yes' }),
    });
    await get(app, '/capture', { 'x-tenant': 'acme', 'user-agent': 'hidden/1' });
    const event = (await events()).find((e) => e.event === 'module_event');
    expect(event?.properties).toMatchObject({ tenant: 'acme', mapped: 'yes', via: 'module' });
    expect(event?.properties.$user_agent).toBeUndefined();
  });

  it('withContext nested in a handler: inner values win inside, the request is back after', async () => {
    const app = await start({ kit: kit() });
    await get(app, '/nested', { 'x-posthog-distinct-id': 'outer-user' });
    const all = await events();
    const inner = all.find((e) => e.event === 'nested_inner');
    const outer = all.find((e) => e.event === 'nested_outer');
    expect(inner?.distinctId).toBe('inner-user');
    expect(inner?.properties).toMatchObject({ inner: 'yes', $request_path: '/nested' });
    expect(outer?.distinctId).toBe('outer-user');
    expect(outer?.properties.inner).toBeUndefined();
  });
}
