import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import { capture, captureException, createPostHogKit, type PostHogKit } from '@posthog-kit/core';
import { type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import Koa from 'koa';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type PostHogState, posthog } from '../src/index.ts';

let emulator: PostHogEmulator;
let kit: PostHogKit;
const servers: Server[] = [];

async function listen(app: Koa): Promise<string> {
  app.silent = true;
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const events = async () => {
  await kit.flush();
  return emulator.events;
};
const exceptions = async () => (await events()).filter((e) => e.event === '$exception');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await emulator.close();
});
beforeEach(() => {
  emulator.reset();
  kit = createPostHogKit({ env: {}, apiKey: emulator.projectApiKey, host: emulator.url });
  return () => kit.shutdown(1_000);
});

// Compile-time: ctx.state.posthog is typed with Koa's default state...
const typed: Koa.Middleware = (ctx) => {
  ctx.state.posthog.capture('typed', { properties: { ok: true } });
  ctx.body = 'ok';
};
// @ts-expect-error the handle is typed, not `any` (compile-time only, never called)
const notAny = (ctx: Koa.Context) => ctx.state.posthog.capture(42);
// ...and with an app's own state type.
interface AppState extends PostHogState {
  account: string;
}
const custom = new Koa<AppState>();
custom.use(posthog());
custom.use((ctx) => {
  ctx.state.posthog.tag('account', ctx.state.account);
});
void notAny;

describe('Koa specifics', () => {
  it('$ip and $current_url follow app.proxy (X-Forwarded-For, X-Forwarded-Proto, proxyIpHeader)', async () => {
    const headers = {
      'x-forwarded-for': '203.0.113.7, 10.0.0.1',
      'x-forwarded-proto': 'https',
      'x-client-ip': '198.51.100.9',
    };
    for (const setup of [
      (_app: Koa) => {},
      (app: Koa) => {
        app.proxy = true;
      },
      (app: Koa) => {
        app.proxy = true;
        app.proxyIpHeader = 'X-Client-IP';
      },
    ]) {
      const app = new Koa();
      setup(app);
      app.use(posthog({ kit }));
      app.use(typed);
      await fetch(await listen(app), { headers });
    }
    const [direct, proxied, ownHeader] = (await events()).filter((e) => e.event === 'typed');
    expect(direct?.properties.$ip).toMatch(/127\.0\.0\.1/);
    expect(direct?.properties.$current_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(proxied?.properties.$ip).toBe('203.0.113.7');
    expect(proxied?.properties.$current_url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
    expect(ownHeader?.properties.$ip).toBe('198.51.100.9');
  });

  it('the matched route includes the prefixes of nested @koa/router routers', async () => {
    const app = new Koa();
    app.use(posthog({ kit, captureViews: true }));
    const users = new Router();
    users.use(async (_ctx, next) => next()); // a router middleware does not hide the route
    users.get('/:id', (ctx) => {
      ctx.body = 'user';
    });
    const api = new Router({ prefix: '/api' });
    api.use('/users', users.routes());
    app.use(api.routes());
    const url = await listen(app);
    await fetch(`${url}/api/users/5?tab=1`);
    await fetch(`${url}/api/nothing`);
    const views = (await events()).filter((e) => e.event === '$pageview');
    expect(views[0]?.properties).toMatchObject({
      $request_route: '/api/users/:id',
      $request_path: '/api/users/5',
      $response_status_code: 200,
    });
    expect(views[1]?.properties).toMatchObject({ $response_status_code: 404 });
    expect(views[1]?.properties.$request_route).toBeUndefined();
  });

  it("app.on('error') sees exactly what it sees without the adapter", async () => {
    const thrown: unknown[] = [];
    const run = async (withAdapter: boolean) => {
      const seen: unknown[] = [];
      const app = new Koa();
      app.on('error', (error: { message: string; status?: number; expose?: boolean }, ctx) => {
        seen.push([error.message, error.status, error.expose, ctx.status, thrown.includes(error)]);
      });
      if (withAdapter) app.use(posthog({ kit }));
      app.use((ctx) => {
        if (ctx.path === '/404') ctx.throw(404, 'nope');
        if (ctx.path === '/500') ctx.throw(500, 'exploded');
        if (ctx.path === '/string') throw 'a string';
        const error = new Error('plain');
        thrown.push(error);
        throw error;
      });
      const url = await listen(app);
      const answers = [];
      for (const path of ['/404', '/500', '/string', '/plain']) {
        const res = await fetch(`${url}${path}`);
        answers.push([res.status, await res.text(), res.headers.get('content-type')]);
      }
      return { seen, answers };
    };
    const bare = await run(false);
    const withAdapter = await run(true);
    expect(withAdapter).toEqual(bare);
    expect(bare.seen).toHaveLength(4);
    // Koa emits before it sets the status: the handler sees the error as thrown.
    expect(bare.seen.at(-1)).toEqual(['plain', undefined, undefined, 404, true]);
  });

  it('ctx.throw(404) is not captured; ctx.throw(500) is captured once, even when app.on("error") captures too', async () => {
    const app = new Koa();
    app.on('error', (error) => captureException(error));
    app.use(posthog({ kit }));
    app.use((ctx) => {
      ctx.throw(ctx.path === '/404' ? 404 : 500, 'thrown');
    });
    const url = await listen(app);
    const ids = { 'x-posthog-distinct-id': 'thrower' };
    expect((await fetch(`${url}/404`, { headers: ids })).status).toBe(404);
    expect((await fetch(`${url}/500`, { headers: ids })).status).toBe(500);
    const captured = await exceptions();
    expect(captured).toHaveLength(1);
    expect(captured[0]).toMatchObject({
      distinctId: 'thrower',
      properties: { $response_status_code: 500, $request_path: '/500' },
    });
  });

  it("the status is the one Koa's ctx.onerror answers", async () => {
    const app = new Koa();
    app.use(posthog({ kit, shouldCaptureError: () => true }));
    app.use((ctx) => {
      // Koa reads only `status`/`statusCode`: a Boom-style or out-of-range status answers 500.
      if (ctx.path === '/boom')
        throw Object.assign(new Error('boom'), { output: { statusCode: 404 } });
      if (ctx.path === '/odd') throw Object.assign(new Error('odd'), { status: 999 });
      throw Object.assign(new Error('coded'), { statusCode: 503 });
    });
    const url = await listen(app);
    const statuses = [];
    for (const path of ['/boom', '/odd', '/coded'])
      statuses.push((await fetch(`${url}${path}`)).status);
    expect(statuses).toEqual([500, 500, 503]);
    const captured = await exceptions();
    expect(captured.map((e) => e.properties.$response_status_code)).toEqual([500, 500, 503]);
  });

  it('an error middleware after ours still shapes the response (the error is handled: not captured)', async () => {
    const app = new Koa();
    app.use(posthog({ kit, captureViews: true }));
    app.use(async (ctx, next) => {
      try {
        await next();
      } catch (error) {
        ctx.status = 418;
        ctx.body = { handled: (error as Error).message };
      }
    });
    app.use(() => {
      throw new Error('teapot');
    });
    const res = await fetch(await listen(app));
    expect(res.status).toBe(418);
    expect(await res.json()).toEqual({ handled: 'teapot' });
    const all = await events();
    expect(all.filter((e) => e.event === '$exception')).toEqual([]);
    expect(all.find((e) => e.event === '$pageview')?.properties.$response_status_code).toBe(418);
  });

  it('an error middleware before ours gets the error unchanged, after it is captured', async () => {
    const app = new Koa();
    let received: unknown;
    app.use(async (ctx, next) => {
      try {
        await next();
      } catch (error) {
        received = error;
        ctx.status = 503;
        ctx.body = { sorry: true };
      }
    });
    app.use(posthog({ kit }));
    const error = new Error('db down');
    app.use(() => {
      throw error;
    });
    const res = await fetch(await listen(app));
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ sorry: true });
    expect(received).toBe(error);
    expect(await exceptions()).toHaveLength(1);
  });

  it('ctx.state.posthog and the module-level functions keep the request after await', async () => {
    const app = new Koa();
    app.use(posthog({ kit }));
    app.use(async (ctx, next) => {
      ctx.state.user = { id: `user-${ctx.get('x-n')}` };
      await next();
    });
    app.use(async (ctx) => {
      await sleep(5);
      ctx.state.posthog.capture('after_await', { properties: { n: ctx.get('x-n') } });
      await sleep(1);
      capture('module_after_await', { properties: { n: ctx.get('x-n') } });
      ctx.body = 'ok';
    });
    const url = await listen(app);
    await Promise.all(
      ['1', '2', '3'].map((n) => fetch(url, { headers: { 'x-n': n } }).then((r) => r.text())),
    );
    const all = (await events()).filter((e) => e.event.endsWith('after_await'));
    expect(all).toHaveLength(6);
    for (const e of all) expect(e.distinctId).toBe(`user-${e.properties.n}`);
  });

  it('a request filtered out gets the inert handle; errors pass through uncaptured', async () => {
    const app = new Koa();
    app.use(posthog({ kit, requestFilter: () => false }));
    app.use((ctx) => {
      ctx.state.posthog.capture('ignored');
      if (ctx.path === '/boom') throw new Error('filtered');
      ctx.body = 'ok';
    });
    const url = await listen(app);
    expect((await fetch(url)).status).toBe(200);
    expect((await fetch(`${url}/boom`)).status).toBe(500);
    expect(await events()).toEqual([]);
  });
});
