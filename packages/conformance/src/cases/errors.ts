import { comparableBody, comparableHeaders, exceptionValue, type Suite } from '../harness.ts';

/** The error policy, once per error, non-Error throws, unchanged responses, the error handler alone. */
export function errorCases({ t, bridge, start, get, events, kit }: Suite): void {
  const { it, expect } = t;
  it('no status or >= 500: captured once with the ids and $response_status_code; 4xx: not', async () => {
    const app = await start({ kit: kit() });
    const ids = { 'x-posthog-distinct-id': 'err-user', 'x-posthog-session-id': 'err-sess' };
    expect((await get(app, '/boom', ids)).status).toBe(500);
    expect((await get(app, '/boom/502', ids)).status).toBe(502);
    expect((await get(app, '/boom/404', ids)).status).toBe(404);
    const exceptions = (await events()).filter((e) => e.event === '$exception');
    expect(exceptions.map(exceptionValue).sort()).toEqual(['bad gateway', 'boom']);
    for (const e of exceptions) {
      expect(e.distinctId).toBe('err-user');
      expect(e.properties.$session_id).toBe('err-sess');
      expect(e.properties.$request_path).toMatch(/^\/boom/);
      // As posthog-node's own middleware sends them: unhandled, from a middleware.
      const list = e.properties.$exception_list as Array<{ mechanism?: Record<string, unknown> }>;
      expect(list[0]?.mechanism).toMatchObject({ type: 'middleware', handled: false });
    }
    const status = Object.fromEntries(
      exceptions.map((e) => [exceptionValue(e), e.properties.$response_status_code]),
    );
    expect(status).toEqual({ boom: 500, 'bad gateway': 502 });
  });

  it('shouldCaptureError overrides the policy', async () => {
    const app = await start({ kit: kit(), shouldCaptureError: (_error, status) => status === 404 });
    await get(app, '/boom');
    await get(app, '/boom/404');
    const exceptions = (await events()).filter((e) => e.event === '$exception');
    expect(exceptions.map(exceptionValue)).toEqual(['missing']);
    expect(exceptions[0]?.properties.$response_status_code).toBe(404);
  });

  it('thrown non-Error values are captured', async () => {
    const app = await start({ kit: kit() });
    expect((await get(app, '/boom/string')).status).toBe(500);
    const exceptions = (await events()).filter((e) => e.event === '$exception');
    expect(exceptions).toHaveLength(1);
    expect(JSON.stringify(exceptions[0]?.properties.$exception_list)).toContain('a thrown string');
  });

  it("the framework's own responses are unchanged: status, headers, body", async () => {
    const bare = await start(false);
    const withKit = await start({ kit: kit(), captureViews: true });
    for (const path of [
      '/ok',
      '/boom',
      '/boom/502',
      '/boom/404',
      '/boom/string',
      '/no/such/route',
    ]) {
      const [a, b] = await Promise.all([get(bare, path), get(withKit, path)]);
      expect({ path, status: b.status }).toEqual({ path, status: a.status });
      expect(await comparableBody(b, withKit)).toBe(await comparableBody(a, bare));
      expect(comparableHeaders(b)).toEqual(comparableHeaders(a));
    }
  });

  if (bridge.errorHandlerOnly) {
    it('the error handler alone: errors captured with the request tags, once each', async () => {
      const app = await start({ kit: kit() }, 'error-handler-only');
      await get(app, '/boom', { 'x-posthog-distinct-id': 'eh-user' });
      await get(app, '/boom/404', { 'x-posthog-distinct-id': 'eh-user' });
      await get(app, '/capture', { 'x-posthog-distinct-id': 'eh-user' });
      const exceptions = (await events()).filter((e) => e.event === '$exception');
      expect(exceptions.map(exceptionValue)).toEqual(['boom']);
      expect(exceptions[0]?.distinctId).toBe('eh-user');
      expect(exceptions[0]?.properties.$request_path).toBe('/boom');
    });
  }
}
