import type { Suite } from '../harness.ts';

/** View capture: off by default, one event per request with its status and route. */
export function viewCases({ t, bridge, start, get, events, kit }: Suite): void {
  const { it, expect } = t;
  it('view capture is off by default', async () => {
    const app = await start({ kit: kit() });
    await get(app, '/ok');
    expect(await events()).toEqual([]);
  });

  it('view capture on: one event per request, with the status and the matched route', async () => {
    const app = await start({ kit: kit(), captureViews: true });
    await get(app, '/items/7', { 'x-posthog-distinct-id': 'viewer' });
    await get(app, '/boom/404', { 'x-posthog-distinct-id': 'viewer' });
    const views = (await events()).filter((e) => e.event === '$pageview');
    expect(views).toHaveLength(2);
    expect(views[0]).toMatchObject({
      distinctId: 'viewer',
      properties: { $response_status_code: 200, $request_path: '/items/7' },
    });
    expect(views[1]?.properties.$response_status_code).toBe(404);
    if (!bridge.skip?.matchedRoute) expect(views[0]?.properties.$request_route).toBe('/items/:id');
  });
}
