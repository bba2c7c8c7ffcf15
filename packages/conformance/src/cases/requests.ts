import type { Suite } from '../harness.ts';

/** The request's life: a parsed body, a streamed response, serverless waitUntil. */
export function requestCases({
  t,
  bridge,
  start,
  get,
  post,
  events,
  kit,
  makeKit,
  spec,
  emulator,
}: Suite): void {
  const { it, expect } = t;
  it('a POST with a JSON body: the context and tags are still right after the body is parsed', async () => {
    const app = await start({ kit: kit() });
    const res = await post(
      app,
      '/echo',
      { hello: 'world', n: 1 },
      {
        'x-posthog-distinct-id': 'poster',
        'x-posthog-session-id': 'post-session',
      },
    );
    expect(await res.json()).toEqual({ echoed: { hello: 'world', n: 1 } });
    const event = (await events()).find((e) => e.event === 'body_received');
    expect(event?.distinctId).toBe('poster');
    expect(event?.properties).toMatchObject({
      keys: 'hello,n',
      $session_id: 'post-session',
      $request_method: 'POST',
      $request_path: '/echo',
    });
  });

  it('a streamed response: the body arrives whole and the view event comes once, after it', async () => {
    const app = await start({ kit: kit(), captureViews: true });
    const res = await get(app, '/stream', { 'x-posthog-distinct-id': 'streamer' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('chunk-1 chunk-2 chunk-3');
    const all = await events();
    expect(all.find((e) => e.event === 'stream_started')?.distinctId).toBe('streamer');
    const views = all.filter((e) => e.event === '$pageview');
    expect(views).toHaveLength(1);
    expect(views[0]?.properties.$response_status_code).toBe(200);
  });

  const serverless = bridge.serverless?.bind(bridge);
  if (serverless) {
    it('serverless: the flush is handed to the platform waitUntil and the events arrive with it', async () => {
      // A kit that never flushes by itself: only waitUntil can deliver the events.
      const edge = makeKit({ clientOptions: { flushAt: 10_000, flushInterval: 0 } });
      const fetchApp = await serverless(spec({ kit: edge }));
      const pending: Promise<unknown>[] = [];
      const request = new Request('http://fn.test/capture', {
        headers: { 'x-posthog-distinct-id': 'edge-user' },
      });
      const res = await fetchApp(request, (promise) => pending.push(promise));
      expect(res.status).toBe(200);
      expect(pending.length).toBeGreaterThan(0);
      expect(emulator().events).toEqual([]);
      await Promise.all(pending);
      expect(
        emulator()
          .events.map((e) => [e.event, e.distinctId])
          .sort(),
      ).toEqual([
        ['module_event', 'edge-user'],
        ['slot_event', 'edge-user'],
      ]);
    });
  }
}
