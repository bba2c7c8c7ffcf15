import { getConnInfo } from '@hono/node-server/conninfo';
import { createPostHogKit, type PostHogHandle, type PostHogKit } from '@posthog-kit/core';
import { flag, type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { afterAll, beforeAll, beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import { getPostHog, type PostHogEnv, posthog } from '../src/index.ts';
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

async function serve(app: Hono<PostHogEnv>): Promise<string> {
  const running = await listen(app);
  closers.push(running.close);
  return running.url;
}

/** A Workers-like execution context that keeps what it is handed. */
function executionContext() {
  const pending: Promise<unknown>[] = [];
  return {
    pending,
    ctx: {
      waitUntil: (promise: Promise<unknown>) => {
        pending.push(promise);
      },
      passThroughOnException: () => {},
      props: {},
    },
  };
}

describe('Hono specifics', () => {
  it('c.var.posthog is typed through PostHogEnv; getPostHog(c) works without it', async () => {
    const app = new Hono<PostHogEnv>();
    app.use(posthog({ kit }));
    app.get('/typed', (c) => {
      expectTypeOf(c.var.posthog).toEqualTypeOf<PostHogHandle>();
      c.var.posthog.capture('typed', { properties: { via: 'var' } });
      return c.text('ok');
    });
    // An app without the Env generic (a sub-app, say) reaches the same handle.
    const untyped = new Hono();
    untyped.get('/', (c) => {
      getPostHog(c).capture('untyped', {
        properties: { same: getPostHog(c) === (c.var as Record<string, unknown>).posthog },
      });
      return c.text('ok');
    });
    app.route('/untyped', untyped);
    // Chaining infers the variable too.
    const chained = new Hono().use(posthog({ kit })).get('/', (c) => {
      expectTypeOf(c.var.posthog).toEqualTypeOf<PostHogHandle>();
      return c.text('ok');
    });
    expect(chained).toBeDefined();
    const headers = { 'x-posthog-distinct-id': 'typed-user' };
    await app.request('/typed', { headers });
    await app.request('/untyped', { headers });
    const all = await events();
    expect(all.map((e) => [e.event, e.distinctId])).toEqual([
      ['typed', 'typed-user'],
      ['untyped', 'typed-user'],
    ]);
    expect(all[1]?.properties.same).toBe(true);
  });

  it('getPostHog(c) without the middleware says what to do', async () => {
    const app = new Hono();
    app.get('/', (c) => c.text(String(getPostHog(c))));
    app.onError((error, c) => c.text(error.message, 500));
    const res = await app.request('/');
    expect(await res.text()).toMatch(/add app\.use\(posthog\(\)\)/);
  });

  it('app.onError and HTTPException responses are exactly as without the adapter', async () => {
    const build = (withKit: boolean) => {
      const app = new Hono<PostHogEnv>();
      if (withKit) app.use(posthog({ kit, captureViews: true }));
      app.get('/teapot', () => {
        throw new HTTPException(418, {
          res: new Response('short and stout', { headers: { 'x-pot': '1' } }),
        });
      });
      app.get('/denied', () => {
        throw new HTTPException(401, { message: 'who are you' });
      });
      app.get('/crash', () => {
        throw new TypeError('undefined is not a function');
      });
      app.onError((error, c) => {
        if (error instanceof HTTPException) return error.getResponse();
        return c.json({ oops: error.name }, 503, { 'retry-after': '5' });
      });
      return app;
    };
    const [bare, instrumented] = [build(false), build(true)];
    for (const path of ['/teapot', '/denied', '/crash']) {
      const [a, b] = await Promise.all([bare.request(path), instrumented.request(path)]);
      expect({ path, status: b.status, body: await b.text() }).toEqual({
        path,
        status: a.status,
        body: await a.text(),
      });
      expect(Object.fromEntries(b.headers)).toEqual(Object.fromEntries(a.headers));
    }
    const all = await events();
    // The TypeError is answered 503 by onError: a server error, captured with that status.
    const exceptions = all.filter((e) => e.event === '$exception');
    expect(exceptions).toHaveLength(1);
    expect(exceptions[0]?.properties).toMatchObject({
      $response_status_code: 503,
      $request_path: '/crash',
    });
    const views = all.filter((e) => e.event === '$pageview');
    expect(views.map((e) => e.properties.$response_status_code)).toEqual([418, 401, 503]);
  });

  it("an HTTPException's status is its own, whatever onError answers", async () => {
    const app = new Hono<PostHogEnv>();
    app.use(posthog({ kit }));
    app.get('/', () => {
      throw new HTTPException(502, { message: 'upstream down' });
    });
    app.onError((_error, c) => c.text('all good', 200));
    expect((await app.request('/')).status).toBe(200);
    const [exception] = (await events()).filter((e) => e.event === '$exception');
    expect(exception?.properties.$response_status_code).toBe(502);
  });

  it('getConnInfo for the runtime gives $ip; without it there is none', async () => {
    for (const withConnInfo of [true, false]) {
      const app = new Hono<PostHogEnv>();
      app.use(posthog({ kit, getConnInfo: withConnInfo ? getConnInfo : undefined }));
      app.get('/', (c) => {
        c.var.posthog.capture('ip', { properties: { withConnInfo } });
        return c.text('ok');
      });
      await fetch(await serve(app));
    }
    // A getConnInfo for another runtime (it throws here): no $ip, the request goes on.
    const app = new Hono<PostHogEnv>();
    app.use(
      posthog({
        kit,
        getConnInfo: () => {
          throw new Error('not this runtime');
        },
      }),
    );
    app.get('/', (c) => {
      c.var.posthog.capture('ip', { properties: { withConnInfo: 'wrong' } });
      return c.text('ok');
    });
    expect((await app.request('/')).status).toBe(200);
    const byCase = Object.fromEntries(
      (await events()).map((e) => [String(e.properties.withConnInfo), e.properties.$ip]),
    );
    expect(byCase.true).toBe('127.0.0.1');
    expect(byCase).toMatchObject({ false: undefined, wrong: undefined });
  });

  it('the matched route is the route pattern, sub-apps included; none for a 404', async () => {
    const app = new Hono<PostHogEnv>();
    app.use(posthog({ kit, captureViews: true }));
    app.use('/api/*', async (_c, next) => {
      await next();
    });
    const api = new Hono();
    api.get('/users/:id', (c) => c.text(`user ${c.req.param('id')}`));
    app.route('/api', api);
    app.get('/crash/:n', () => {
      throw new Error('crash');
    });
    await app.request('/api/users/5?tab=1');
    await app.request('/crash/1');
    await app.request('/nowhere');
    const views = (await events()).filter((e) => e.event === '$pageview');
    expect(
      views.map((e) => [
        e.properties.$request_path,
        e.properties.$request_route,
        e.properties.$response_status_code,
      ]),
    ).toEqual([
      ['/api/users/5', '/api/users/:id', 200],
      ['/crash/1', '/crash/:n', 500],
      ['/nowhere', undefined, 404],
    ]);
  });

  it('a Workers execution context gets the flush: events arrive once its promises settle', async () => {
    // A kit that never flushes on its own: only waitUntil can deliver the events.
    const edgeKit = createPostHogKit({
      env: {},
      apiKey: emulator.projectApiKey,
      host: emulator.url,
      clientOptions: { flushAt: 10_000, flushInterval: 0 },
    });
    const app = new Hono<PostHogEnv>();
    app.use(posthog({ kit: edgeKit }));
    app.get('/signup', async (c) => {
      c.var.posthog.capture('signed_up');
      const beta = await c.var.posthog.featureEnabled('beta');
      return c.json({ beta });
    });
    app.get('/crash', () => {
      throw new Error('worker crash');
    });
    const headers = { 'x-posthog-distinct-id': 'edge-user' };
    const first = executionContext();
    const res = await app.fetch(new Request('http://worker/signup', { headers }), {}, first.ctx);
    expect(await res.json()).toEqual({ beta: true });
    const second = executionContext();
    const crash = await app.fetch(new Request('http://worker/crash', { headers }), {}, second.ctx);
    expect(crash.status).toBe(500);
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

  it('no execution context (Node): nothing is handed anywhere, events flush as usual', async () => {
    const app = new Hono<PostHogEnv>();
    app.use(posthog({ kit }));
    app.get('/', (c) => {
      c.var.posthog.capture('on_node');
      return c.text('ok');
    });
    expect((await fetch(await serve(app))).status).toBe(200);
    expect(emulator.events).toEqual([]);
    expect((await events()).map((e) => e.event)).toEqual(['on_node']);
  });

  it('a thrown non-Error (which Hono does not catch) is captured and goes on unchanged', async () => {
    const app = new Hono<PostHogEnv>();
    app.use(posthog({ kit }));
    app.get('/', () => {
      throw 'plain string';
    });
    await expect(app.request('/')).rejects.toBe('plain string');
    const exceptions = (await events()).filter((e) => e.event === '$exception');
    expect(exceptions).toHaveLength(1);
    expect(exceptions[0]?.properties.$response_status_code).toBe(500);
  });
});
