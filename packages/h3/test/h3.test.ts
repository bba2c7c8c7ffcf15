import { createPostHogKit, type PostHogHandle, type PostHogKit } from '@posthog-kit/core';
import { flag, type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { H3, HTTPError } from 'h3';
import { afterAll, beforeAll, beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import { getPostHog, posthog } from '../src/index.ts';
import { listen } from './bridge.ts';

let emulator: PostHogEmulator;
let kit: PostHogKit;
const closers: Array<() => Promise<void>> = [];

const events = async () => {
  await kit.flush();
  return emulator.events;
};

beforeAll(async () => {
  emulator = await startEmulator({ flags: [flag('beta', { rollout: 100 })] });
});
afterAll(async () => {
  await Promise.all(closers.map((close) => close()));
  await emulator.close();
});
beforeEach(() => {
  emulator.reset();
  kit = createPostHogKit({
    env: {},
    apiKey: emulator.projectApiKey,
    host: emulator.url,
    clientOptions: { flushAt: 10_000, flushInterval: 60_000 },
  });
  return () => kit.shutdown(1_000);
});

async function serve(app: H3): Promise<string> {
  const running = await listen(app);
  closers.push(running.close);
  return running.url;
}

/** A request as a serverless runtime hands it to h3: with a waitUntil that keeps the promises. */
function serverlessRequest(url: string, init?: RequestInit) {
  const pending: Promise<unknown>[] = [];
  const request = Object.assign(new Request(url, init), {
    waitUntil: (promise: Promise<unknown>) => {
      pending.push(promise);
    },
  });
  return { request, pending };
}

describe('h3 specifics', () => {
  it('event.context.posthog is typed; getPostHog(event) is the same handle', async () => {
    const app = new H3();
    app.use(posthog({ kit }));
    app.get('/', (event) => {
      expectTypeOf(event.context.posthog).toEqualTypeOf<PostHogHandle | undefined>();
      expectTypeOf(getPostHog(event)).toEqualTypeOf<PostHogHandle>();
      event.context.posthog?.capture('typed', {
        properties: { same: getPostHog(event) === event.context.posthog },
      });
      return 'ok';
    });
    await app.request('/', { headers: { 'x-posthog-distinct-id': 'h3-user' } });
    const [event] = await events();
    expect(event).toMatchObject({
      event: 'typed',
      distinctId: 'h3-user',
      properties: { same: true },
    });
  });

  it('getPostHog(event) without the middleware says what to do', async () => {
    const app = new H3({
      silent: true,
      onError: (error) => new Response(error.message, { status: 500 }),
    });
    app.get('/', (event) => String(getPostHog(event)));
    expect(await (await app.request('/')).text()).toMatch(/add app\.use\(posthog\(\)\)/);
  });

  it("an unmatched route's 404 is never captured, whatever the policy says", async () => {
    const app = new H3();
    app.use(posthog({ kit, captureViews: true, shouldCaptureError: () => true }));
    app.get('/known', () => 'ok');
    app.get('/missing', () => {
      throw new HTTPError({ status: 404, message: 'no such item' });
    });
    expect((await app.request('/nowhere')).status).toBe(404);
    expect((await app.request('/missing')).status).toBe(404);
    const all = await events();
    // The handler's own 404 is an error the policy may capture; the router's miss is not.
    expect(
      all.filter((e) => e.event === '$exception').map((e) => e.properties.$request_path),
    ).toEqual(['/missing']);
    const views = all.filter((e) => e.event === '$pageview');
    expect(
      views.map((e) => [e.properties.$request_path, e.properties.$response_status_code]),
    ).toEqual([
      ['/nowhere', 404],
      ['/missing', 404],
    ]);
    expect(views[0]?.properties.$request_route).toBeUndefined();
    expect(views[1]?.properties.$request_route).toBe('/missing');
  });

  it("the app's onError and error responses are exactly as without the adapter", async () => {
    const seen: string[] = [];
    const build = (withKit: boolean) => {
      const app = new H3({
        silent: true,
        onError: (error, event) => {
          seen.push(`${withKit}:${error.status}`);
          if (event.url.pathname === '/custom') {
            return new Response('handled by onError', { status: 503, headers: { 'x-own': '1' } });
          }
        },
      });
      if (withKit) app.use(posthog({ kit }));
      app.get('/custom', () => {
        throw new Error('custom page');
      });
      app.get('/default', () => {
        throw new HTTPError({ status: 422, message: 'bad input', data: { field: 'email' } });
      });
      app.get('/returned', () => new Error('returned, not thrown'));
      return app;
    };
    const [bare, instrumented] = [build(false), build(true)];
    for (const path of ['/custom', '/default', '/returned', '/nowhere']) {
      const [a, b] = await Promise.all([bare.request(path), instrumented.request(path)]);
      expect({ path, status: b.status, body: await b.text() }).toEqual({
        path,
        status: a.status,
        body: await a.text(),
      });
      expect(Object.fromEntries(b.headers)).toEqual(Object.fromEntries(a.headers));
    }
    expect(seen.filter((s) => s.startsWith('true'))).toEqual(
      seen.filter((s) => s.startsWith('false')).map((s) => s.replace('false', 'true')),
    );
    const exceptions = (await events()).filter((e) => e.event === '$exception');
    const list = (e: (typeof exceptions)[number]) =>
      (e.properties.$exception_list as Array<{ value?: string }>)[0]?.value;
    expect(exceptions.map(list).sort()).toEqual(['custom page', 'returned, not thrown']);
  });

  it('$ip: the connection address, or with xForwardedFor the first X-Forwarded-For entry', async () => {
    for (const xForwardedFor of [false, true]) {
      const app = new H3();
      app.use(posthog({ kit, xForwardedFor }));
      app.get('/', (event) => {
        getPostHog(event).capture('ip', { properties: { xForwardedFor } });
        return 'ok';
      });
      await fetch(await serve(app), { headers: { 'x-forwarded-for': '203.0.113.7, 10.0.0.1' } });
    }
    const byCase = Object.fromEntries(
      (await events()).map((e) => [String(e.properties.xForwardedFor), e.properties.$ip]),
    );
    expect(byCase.false).toMatch(/127\.0\.0\.1/);
    expect(byCase.true).toBe('203.0.113.7');
  });

  it('event.waitUntil gets the flush on serverless: events arrive once its promises settle', async () => {
    const edgeKit = createPostHogKit({
      env: {},
      apiKey: emulator.projectApiKey,
      host: emulator.url,
      clientOptions: { flushAt: 10_000, flushInterval: 0 },
    });
    const app = new H3({ silent: true });
    app.use(posthog({ kit: edgeKit }));
    app.get('/signup', async (event) => {
      getPostHog(event).capture('signed_up');
      return { beta: await getPostHog(event).featureEnabled('beta') };
    });
    app.get('/crash', () => {
      throw new Error('lambda crash');
    });
    const headers = { 'x-posthog-distinct-id': 'edge-user' };
    const first = serverlessRequest('http://fn/signup', { headers });
    expect(await (await app.fetch(first.request)).json()).toEqual({ beta: true });
    const second = serverlessRequest('http://fn/crash', { headers });
    expect((await app.fetch(second.request)).status).toBe(500);
    expect(first.pending.length).toBeGreaterThan(0);
    expect(second.pending.length).toBeGreaterThan(0);
    expect(emulator.events).toEqual([]);
    await Promise.all([...first.pending, ...second.pending]);
    expect(emulator.events.map((e) => [e.event, e.distinctId]).sort()).toEqual([
      ['$exception', 'edge-user'],
      ['$feature_flag_called', 'edge-user'],
      ['signed_up', 'edge-user'],
    ]);
    await edgeKit.shutdown(1_000);
  });

  it("srvx's long-running servers (Node, Bun, Deno): events are batched, not flushed per request", async () => {
    const app = new H3();
    app.use(posthog({ kit }));
    app.get('/', (event) => {
      getPostHog(event).capture('on_node');
      return 'ok';
    });
    // The shape srvx's Node server gives every request: a waitUntil for graceful shutdown.
    const { request, pending } = serverlessRequest('http://node/');
    Object.assign(request, { runtime: { name: 'node' } });
    expect((await app.fetch(request)).status).toBe(200);
    expect((await fetch(await serve(app))).status).toBe(200);
    expect(pending).toEqual([]);
    expect(emulator.events).toEqual([]);
    expect((await events()).map((e) => e.event)).toEqual(['on_node', 'on_node']);
  });

  it('a mounted app: the route includes the base, the path is the request path', async () => {
    const api = new H3();
    api.use((event) => {
      getPostHog(event).capture('in_sub_middleware');
    });
    api.get('/users/:id', (event) => `user ${event.context.params?.id}`);
    const app = new H3();
    app.use(posthog({ kit, captureViews: true }));
    app.mount('/api', api);
    expect(await (await app.request('/api/users/5?tab=1')).text()).toBe('user 5');
    const all = await events();
    expect(all.find((e) => e.event === 'in_sub_middleware')?.properties.$request_path).toBe(
      '/api/users/5',
    );
    expect(all.find((e) => e.event === '$pageview')?.properties).toMatchObject({
      $request_route: '/api/users/:id',
      $request_path: '/api/users/5',
      $response_status_code: 200,
    });
  });
});
