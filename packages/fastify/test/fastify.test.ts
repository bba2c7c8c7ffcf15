import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fastifyRequestContext, requestContext } from '@fastify/request-context';
import {
  capture,
  createPostHogKit,
  getKit,
  type PostHogKit,
  PostHogKitError,
  resetKit,
} from '@posthog-kit/core';
import { type PostHogEmulator, type RecordedEvent, startEmulator } from '@posthog-kit/testing';
import Fastify, {
  type FastifyInstance,
  type FastifyRequest,
  type RouteHandlerMethod,
} from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getPostHog, posthog } from '../src/index.ts';

declare module '@fastify/request-context' {
  interface RequestContextData {
    tenant: string;
  }
}

let emulator: PostHogEmulator;
let kit: PostHogKit;
const apps: FastifyInstance[] = [];

const events = async (name?: string | RegExp): Promise<RecordedEvent[]> => {
  await kit.flush();
  return emulator.events.filter(
    (e) => name === undefined || (typeof name === 'string' ? e.event === name : name.test(e.event)),
  );
};

/** An app in production shape: no logger, registered with the plugin first. */
async function build(options: Parameters<typeof posthog>[1] = { kit }): Promise<FastifyInstance> {
  const app = Fastify();
  apps.push(app);
  await app.register(posthog, options);
  return app;
}

async function listen(app: FastifyInstance): Promise<string> {
  return app.listen({ port: 0, host: '127.0.0.1' });
}

const ID = { 'x-posthog-distinct-id': 'fastify-user', 'x-posthog-session-id': 'fastify-sess' };

beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await emulator.close();
});
beforeEach(() => {
  emulator.reset();
  kit = createPostHogKit({ env: {}, apiKey: emulator.projectApiKey, host: emulator.url });
  return () => kit.shutdown(1_000);
});

// Compile-time: request.posthog is typed on every Fastify request (declaration merging).
const typed: RouteHandlerMethod = async (request) => {
  request.posthog.capture('typed', { properties: { ok: true } });
  return { ok: true };
};

const HOOKS = [
  'onRequest',
  'preParsing',
  'preValidation',
  'preHandler',
  'preSerialization',
  'onSend',
  'onResponse',
] as const;

type Done = (error: Error | null, value?: unknown) => void;

/** Every hook of the lifecycle captures with the sugar only (no argument names the user). */
function lifecycleApp(app: FastifyInstance): void {
  for (const hook of HOOKS) {
    // Async hooks and callback hooks that finish later: both must keep the context.
    if (hook === 'preParsing' || hook === 'preSerialization' || hook === 'onSend') {
      app.addHook(hook, (_request: unknown, _reply: unknown, payload: unknown, done: Done) => {
        setImmediate(() => {
          capture(`hook_${hook}`);
          done(null, payload);
        });
      });
    } else {
      app.addHook(hook, async () => {
        await sleep(1);
        capture(`hook_${hook}`);
      });
    }
  }
  app.post('/things', async (request) => {
    await sleep(2);
    capture('handler_async', { properties: { name: (request.body as { name: string }).name } });
    return { saved: true };
  });
  // A callback handler that answers later, from a timer.
  app.post('/things/later', (request, reply) => {
    setTimeout(() => {
      capture('handler_callback');
      request.posthog.capture('handler_slot');
      reply.send({ saved: true });
    }, 2);
  });
  // A stream whose chunks are produced with awaits in between.
  app.get('/stream', (_request, reply) => {
    async function* chunks() {
      for (let i = 0; i < 3; i++) {
        await sleep(2);
        capture('stream_chunk', { properties: { i } });
        yield `chunk ${i}\n`;
      }
    }
    reply.type('text/plain').send(Readable.from(chunks()));
  });
}

function expectRequestContext(list: RecordedEvent[], path: string | RegExp): void {
  expect(list.length).toBeGreaterThan(0);
  for (const e of list) {
    expect({ event: e.event, distinctId: e.distinctId }).toEqual({
      event: e.event,
      distinctId: 'fastify-user',
    });
    expect({ event: e.event, session: e.properties.$session_id }).toEqual({
      event: e.event,
      session: 'fastify-sess',
    });
    expect(String(e.properties.$request_path)).toMatch(path);
  }
}

describe('the context through the lifecycle', () => {
  for (const transport of ['inject', 'socket'] as const) {
    it(`${transport}: every hook and the handler after a JSON body was parsed`, async () => {
      const app = await build();
      lifecycleApp(app);
      const body = JSON.stringify({ name: 'widget' });
      const headers = { ...ID, 'content-type': 'application/json' };
      if (transport === 'inject') {
        const res = await app.inject({ method: 'POST', url: '/things', headers, body });
        expect(res.json()).toEqual({ saved: true });
      } else {
        const url = await listen(app);
        const res = await fetch(`${url}/things`, { method: 'POST', headers, body });
        expect(await res.json()).toEqual({ saved: true });
      }
      await sleep(20); // onResponse runs after the response was sent
      const all = await events();
      expect(all.map((e) => e.event).sort()).toEqual(
        [...HOOKS.map((h) => `hook_${h}`), 'handler_async'].sort(),
      );
      expectRequestContext(all, /^\/things$/);
      expect(all.find((e) => e.event === 'handler_async')?.properties.name).toBe('widget');
    });
  }

  it('a callback handler answering from a timer, and a streamed reply', async () => {
    const app = await build();
    lifecycleApp(app);
    const url = await listen(app);
    const posted = await fetch(`${url}/things/later`, {
      method: 'POST',
      headers: { ...ID, 'content-type': 'application/json' },
      body: '{"name":"later"}',
    });
    expect(posted.status).toBe(200);
    await sleep(20);
    const handlers = await events(/^handler_/);
    expect(handlers.map((e) => e.event)).toEqual(['handler_callback', 'handler_slot']);
    expectRequestContext(handlers, /^\/things\/later$/);

    emulator.reset();
    const streamed = await fetch(`${url}/stream`, { headers: ID });
    expect(await streamed.text()).toBe('chunk 0\nchunk 1\nchunk 2\n');
    await sleep(20);
    const all = await events();
    expect(all.filter((e) => e.event === 'stream_chunk')).toHaveLength(3);
    expect(all.filter((e) => e.event === 'hook_onResponse')).toHaveLength(1);
    expectRequestContext(all, /^\/stream$/);
  });

  it('100 concurrent POSTs with bodies: each event has its own request', async () => {
    const app = await build();
    app.post('/echo/:n', async (request) => {
      await sleep(Math.random() * 5);
      capture('echo', { properties: { n: (request.params as { n: string }).n } });
      return request.body;
    });
    const url = await listen(app);
    await Promise.all(
      Array.from({ length: 100 }, (_, n) =>
        fetch(`${url}/echo/${n}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-posthog-distinct-id': `u-${n}` },
          body: JSON.stringify({ n }),
        }).then((r) => r.json()),
      ),
    );
    const all = await events('echo');
    expect(all).toHaveLength(100);
    for (const e of all) expect(e.distinctId).toBe(`u-${e.properties.n}`);
  });

  for (const order of ['request-context first', 'posthog first'] as const) {
    it(`alongside @fastify/request-context (${order})`, async () => {
      const app = Fastify();
      apps.push(app);
      const withContext = () =>
        app.register(fastifyRequestContext, {
          // Typed by hand: its types cannot see fastify in pnpm's layout (a devDependency of ours).
          defaultStoreValues: (request: FastifyRequest) => ({
            tenant: String(request.headers['x-tenant']),
          }),
        });
      if (order === 'request-context first') {
        await withContext();
        await app.register(posthog, { kit });
      } else {
        await app.register(posthog, { kit });
        await withContext();
      }
      lifecycleApp(app);
      app.post('/tenant', async () => {
        await sleep(1);
        capture('handler', { properties: { tenant: requestContext.get('tenant') } });
        return { tenant: requestContext.get('tenant') };
      });
      const url = await listen(app);
      const headers = { ...ID, 'x-tenant': 'acme', 'content-type': 'application/json' };
      const res = await fetch(`${url}/tenant`, { method: 'POST', headers, body: '{}' });
      expect(await res.json()).toEqual({ tenant: 'acme' });
      await fetch(`${url}/things`, { method: 'POST', headers, body: '{"name":"w"}' });
      await sleep(20);
      const all = await events();
      expect(all.map((e) => e.event).sort()).toEqual(
        ['handler', 'handler_async', ...HOOKS.flatMap((h) => [`hook_${h}`, `hook_${h}`])].sort(),
      );
      expect(all.find((e) => e.event === 'handler')?.properties.tenant).toBe('acme');
      expectRequestContext(all, /^\/(things|tenant)$/);
    });
  }
});

describe('errors', () => {
  const exceptionValue = (e: RecordedEvent | undefined) =>
    (e?.properties.$exception_list as Array<{ value?: string }> | undefined)?.[0]?.value;

  it('validation errors are 400 and not captured; a thrown 5xx or plain error once, with its status', async () => {
    const app = await build();
    app.post('/strict', { schema: { body: { type: 'object', required: ['name'] } } }, typed);
    app.get('/boom', async () => {
      throw new Error('boom');
    });
    app.get('/bad-gateway', async () => {
      throw Object.assign(new Error('upstream down'), { statusCode: 502 });
    });
    app.get(
      '/in-hook',
      { preHandler: async () => Promise.reject(new Error('hook failed')) },
      typed,
    );
    app.get('/overloaded', async (_request, reply) => {
      reply.code(503);
      throw new Error('overloaded');
    });
    const post = await app.inject({ method: 'POST', url: '/strict', headers: ID, payload: {} });
    expect(post.statusCode).toBe(400);
    expect((await app.inject({ url: '/boom', headers: ID })).statusCode).toBe(500);
    expect((await app.inject({ url: '/bad-gateway', headers: ID })).statusCode).toBe(502);
    expect((await app.inject({ url: '/in-hook', headers: ID })).statusCode).toBe(500);
    expect((await app.inject({ url: '/overloaded', headers: ID })).statusCode).toBe(503);
    const exceptions = await events('$exception');
    expect(exceptions).toHaveLength(4);
    expect(
      Object.fromEntries(
        exceptions.map((e) => [exceptionValue(e), e.properties.$response_status_code]),
      ),
    ).toEqual({ boom: 500, 'upstream down': 502, 'hook failed': 500, overloaded: 503 });
    expectRequestContext(exceptions, /^\/(boom|bad-gateway|in-hook|overloaded)$/);
  });

  it("the app's own onError hooks see the request's context", async () => {
    const app = await build();
    app.addHook('onError', async (_request, _reply, error) => {
      await sleep(1);
      capture('hook_onError', { properties: { message: error.message } });
    });
    app.post('/fail', async () => {
      await sleep(1);
      throw new Error('failed after the body');
    });
    const res = await app.inject({ method: 'POST', url: '/fail', headers: ID, payload: { a: 1 } });
    expect(res.statusCode).toBe(500);
    const [hook] = await events('hook_onError');
    expect(hook?.properties.message).toBe('failed after the body');
    expectRequestContext(await events(/^(hook_onError|\$exception)$/), /^\/fail$/);
  });

  it("the app's setErrorHandler still answers, and an error it re-throws is captured once", async () => {
    const app = await build();
    const seen: string[] = [];
    app.setErrorHandler(async (error: Error, _request, reply) => {
      seen.push(error.message);
      if (error.message === 'rethrown') throw error;
      return reply.code(418).send({ custom: error.message });
    });
    app.get('/custom', async () => {
      throw new Error('custom');
    });
    app.get('/rethrown', async () => {
      throw new Error('rethrown');
    });
    const custom = await app.inject({ url: '/custom', headers: ID });
    expect({ status: custom.statusCode, body: custom.json() }).toEqual({
      status: 418,
      body: { custom: 'custom' },
    });
    expect((await app.inject({ url: '/rethrown', headers: ID })).statusCode).toBe(500);
    expect(seen).toEqual(['custom', 'rethrown']);
    const exceptions = await events('$exception');
    expect(exceptions.map(exceptionValue).sort()).toEqual(['custom', 'rethrown']);
  });

  it('the response is the same with and without the plugin, errors included', async () => {
    const routes = (app: FastifyInstance) => {
      app.get('/boom', async () => {
        throw Object.assign(new Error('nope'), { code: 'E_NOPE' });
      });
      app.post('/strict', { schema: { body: { type: 'object', required: ['a'] } } }, typed);
    };
    const bare = Fastify();
    apps.push(bare);
    routes(bare);
    const withKit = await build({ kit, captureViews: true });
    routes(withKit);
    const json = { 'content-type': 'application/json' };
    for (const request of [
      { url: '/boom' },
      { url: '/nowhere' },
      { method: 'POST' as const, url: '/strict', payload: {} },
      { method: 'POST' as const, url: '/strict', payload: 'not json', headers: json },
    ]) {
      const [a, b] = await Promise.all([bare.inject(request), withKit.inject(request)]);
      expect({ status: b.statusCode, body: b.body }).toEqual({
        status: a.statusCode,
        body: a.body,
      });
      const { date: _d, ...ha } = a.headers;
      const { date: _e, ...hb } = b.headers;
      expect(hb).toEqual(ha);
    }
  });
});

describe('requests', () => {
  it('view events carry the route template, with the prefix; a 404 none', async () => {
    const app = await build({ kit, captureViews: true });
    await app.register(
      async (api) => {
        api.get('/users/:id', typed);
      },
      { prefix: '/api' },
    );
    const url = await listen(app);
    await fetch(`${url}/api/users/5?tab=1`, { headers: ID });
    await fetch(`${url}/missing`, { headers: ID });
    const views = await events('$pageview');
    expect(views.map((e) => e.properties.$request_route)).toEqual(['/api/users/:id', undefined]);
    expect(views.map((e) => e.properties.$response_status_code)).toEqual([200, 404]);
    expect(views[0]?.properties).toMatchObject({
      $request_path: '/api/users/5',
      $current_url: `${url}/api/users/5?tab=1`,
    });
  });

  it('$ip, the scheme and the host follow trustProxy', async () => {
    for (const trustProxy of [false, true]) {
      const app = Fastify({ trustProxy });
      apps.push(app);
      await app.register(posthog, { kit });
      app.get('/', typed);
      const url = await listen(app);
      await fetch(url, {
        headers: {
          'x-forwarded-for': '203.0.113.7',
          'x-forwarded-proto': 'https',
          'x-forwarded-host': 'shop.example.com',
        },
      });
    }
    const [direct, proxied] = await events('typed');
    expect(direct?.properties.$ip).toBe('127.0.0.1');
    expect(direct?.properties.$current_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(proxied?.properties.$ip).toBe('203.0.113.7');
    expect(proxied?.properties.$current_url).toBe('https://shop.example.com/');
  });

  it('request.user (@fastify/jwt, @fastify/passport) is the default user', async () => {
    const app = await build();
    app.addHook('preHandler', async (request) => {
      (request as { user?: unknown }).user = { sub: 'jwt-sub', email: 'j@x.io' };
    });
    app.get('/', typed);
    await app.inject({ url: '/' });
    const [event] = await events('typed');
    expect(event).toMatchObject({ distinctId: 'jwt-sub', properties: { email: 'j@x.io' } });
  });

  it('the URL as received, before rewriteUrl', async () => {
    const app = Fastify({ rewriteUrl: (req) => (req.url === '/old' ? '/new' : (req.url ?? '/')) });
    apps.push(app);
    await app.register(posthog, { kit, captureViews: true });
    app.get('/new', typed);
    await app.inject({ url: '/old' });
    const [view] = await events('$pageview');
    expect(view?.properties).toMatchObject({ $request_path: '/old', $request_route: '/new' });
  });

  it('a request requestFilter skips still runs, with a no-op handle', async () => {
    const app = await build({ kit, requestFilter: (req) => req.path !== '/health' });
    app.get('/health', typed);
    expect((await app.inject({ url: '/health', headers: ID })).json()).toEqual({ ok: true });
    expect(await events()).toEqual([]);
  });
});

describe('scopes', () => {
  it('registered in an encapsulated scope, it applies there only', async () => {
    const app = Fastify();
    apps.push(app);
    await app.register(async (tracked) => {
      await tracked.register(posthog, { kit });
      tracked.get('/inside', typed);
    });
    app.get('/outside', async (request) => {
      capture('outside');
      return {
        handle: request.posthog ?? null,
        error: String(catchError(() => getPostHog(request))),
      };
    });
    await app.inject({ url: '/inside', headers: ID });
    const outside = await app.inject({ url: '/outside', headers: ID });
    expect(outside.json()).toEqual({
      handle: null,
      error: expect.stringContaining('register the plugin in this scope or a parent one'),
    });
    const all = await events();
    expect(all.map((e) => [e.event, e.distinctId])).toEqual([['typed', 'fastify-user']]);
  });

  it('registered twice for the same routes: an error at boot that says so', async () => {
    const app = Fastify();
    apps.push(app);
    app.register(posthog, { kit });
    app.register(async (child) => {
      await child.register(posthog, { kit });
    });
    await expect(app.ready()).rejects.toThrow(/decorator 'posthog' has already been added/);
  });

  it("register()'s own options (prefix, logLevel) are not kit settings", async () => {
    const app = Fastify();
    apps.push(app);
    await app.register(posthog, { kit, prefix: '/x', logLevel: 'warn' } as never);
    app.get('/', typed);
    await app.inject({ url: '/' });
    expect(await events('typed')).toHaveLength(1);
  });
});

describe('closing', () => {
  it('app.close() sends what the requests captured; a kit you pass stays yours', async () => {
    const app = await build();
    app.get('/', typed);
    await app.inject({ url: '/', headers: ID });
    expect(emulator.events).toHaveLength(0); // queued, not yet sent
    await app.close();
    expect(emulator.events.map((e) => e.event)).toEqual(['typed']);
    expect(kit.isShutdown).toBe(false);
  });

  it('the default kit is flushed, not shut down: the next app of the process still reports', async () => {
    await resetKit();
    const settings = { env: {}, apiKey: emulator.projectApiKey, host: emulator.url };
    try {
      for (const round of [1, 2]) {
        const app = Fastify();
        await app.register(posthog, settings);
        app.get('/', async () => {
          capture('round', { properties: { round } });
          return 'ok';
        });
        await app.inject({ url: '/', headers: ID });
        await app.close();
        expect(getKit().isShutdown).toBe(false);
      }
      expect(emulator.events.map((e) => e.properties.round)).toEqual([1, 2]);
    } finally {
      await resetKit(1_000);
    }
  });

  it('app.close() waits at most closeTimeoutMs for a PostHog that does not answer', async () => {
    const app = await build({ kit, closeTimeoutMs: 200 });
    app.get('/', typed);
    await app.inject({ url: '/' });
    emulator.fault('batch', { delayMs: 3_000, times: 1 });
    const started = Date.now();
    await app.close();
    expect(Date.now() - started).toBeLessThan(800);
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(PostHogKitError);
    return (error as Error).message;
  }
}
