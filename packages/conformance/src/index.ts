/**
 * The adapter conformance suite: every posthog-kit adapter (ours and third-party
 * ones) runs it through a small bridge, the way every Keyv store runs
 * `@keyv/test-suite`. Real HTTP, posthog-node talking to the emulator.
 */
import {
  capture,
  createPostHogKit,
  featureEnabled,
  type MiddlewareOptions,
  type PostHogHandle,
  type PostHogKit,
  type PostHogKitOptions,
} from '@posthog-kit/core';
import {
  flag,
  type PostHogEmulator,
  type RecordedEvent,
  startEmulator,
} from '@posthog-kit/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

/** What a neutral handler receives. */
export interface NeutralRequest {
  /** The request's handle from the framework's slot; undefined in an app without the adapter. */
  posthog: PostHogHandle | undefined;
  /** Route parameters. */
  params: Record<string, string>;
}

/** What a neutral handler answers. */
export interface NeutralResponse {
  /** @default 200 */
  status?: number;
  /** Sent as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
}

/** A handler the bridge mounts as a native route; a throw goes through the framework's error path. */
export type NeutralHandler = (req: NeutralRequest) => NeutralResponse | Promise<NeutralResponse>;

/** One route of the app under test (`:name` parameters). */
export interface RouteSpec {
  method: 'GET' | 'POST';
  path: string;
  handler: NeutralHandler;
}

/**
 * The app a bridge builds: the adapter first (unless `posthog` is false), then a
 * fake auth middleware that sets the framework's user (`req.user`, `ctx.state.user`,
 * ...) from the JSON in the `x-test-user` header, then the routes, then (Express) the
 * error handler. Error pages must carry no stack traces (production mode), so
 * responses can be compared with and without the adapter.
 */
export interface AppSpec {
  posthog: MiddlewareOptions | false;
  routes: RouteSpec[];
}

/** A running app. */
export interface RunningApp {
  /** Base URL on loopback. */
  url: string;
  close(): Promise<void>;
}

/** How the suite drives one framework. */
export interface AdapterBridge {
  /** The framework's name, for test titles. */
  name: string;
  start(spec: AppSpec): Promise<RunningApp>;
  /** The framework's own client error for a status, thrown from a handler. */
  httpError(status: number, message: string): unknown;
  /** What the framework cannot do; those cases are skipped. */
  skip?: {
    /** No matched route pattern (`/items/:id`) on view events. */
    matchedRoute?: boolean;
    /** No client IP in the `$ip` tag. */
    clientIp?: boolean;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function routes(bridge: AdapterBridge): RouteSpec[] {
  return [
    {
      method: 'GET',
      path: '/capture',
      handler: ({ posthog }) => {
        capture('module_event', { properties: { via: 'module' } });
        posthog?.capture('slot_event', { properties: { via: 'slot' } });
        return { body: { ok: true } };
      },
    },
    {
      method: 'GET',
      path: '/flag',
      handler: async ({ posthog }) => ({
        body: {
          module: await featureEnabled('beta'),
          slot: (await posthog?.featureEnabled('beta')) ?? null,
        },
      }),
    },
    {
      method: 'GET',
      path: '/items/:id',
      handler: ({ params }) => {
        capture('item_viewed', { properties: { item: params.id } });
        return { body: { id: params.id } };
      },
    },
    {
      method: 'GET',
      path: '/slow/:n',
      handler: async ({ posthog, params }) => {
        for (let i = 0; i < 3; i++) {
          await sleep(Math.floor(Math.random() * 4));
          if (i === 1) capture('slow', { properties: { n: params.n } });
        }
        posthog?.capture('slow_slot', { properties: { n: params.n } });
        return { body: { n: params.n } };
      },
    },
    {
      method: 'GET',
      path: '/health',
      handler: ({ posthog }) => {
        capture('health_module');
        posthog?.capture('health_slot');
        return { body: { healthy: true } };
      },
    },
    {
      method: 'GET',
      path: '/ok',
      handler: () => ({ status: 201, body: { hello: 'world' }, headers: { 'x-custom': 'kept' } }),
    },
    {
      method: 'GET',
      path: '/boom',
      handler: () => {
        throw new Error('boom');
      },
    },
    {
      method: 'GET',
      path: '/boom/502',
      handler: () => {
        throw Object.assign(new Error('bad gateway'), { status: 502, statusCode: 502 });
      },
    },
    {
      method: 'GET',
      path: '/boom/404',
      handler: () => {
        throw bridge.httpError(404, 'missing');
      },
    },
    {
      method: 'GET',
      path: '/boom/string',
      handler: async () => {
        await sleep(1);
        throw 'a thrown string';
      },
    },
  ];
}

const exceptionValue = (e: RecordedEvent) =>
  (e.properties.$exception_list as Array<{ value?: string }> | undefined)?.[0]?.value;

/** Runs the conformance suite for one adapter. */
export function adapterConformance(bridge: AdapterBridge): void {
  describe(`${bridge.name} adapter conformance`, () => {
    let emulator: PostHogEmulator;
    let kit: PostHogKit;
    const apps: RunningApp[] = [];
    const kits: PostHogKit[] = [];

    const makeKit = (options: PostHogKitOptions = {}) => {
      const k = createPostHogKit({
        env: {},
        apiKey: emulator.projectApiKey,
        host: emulator.url,
        ...options,
        clientOptions: {
          fetchRetryCount: 0,
          flushAt: 10_000,
          flushInterval: 60_000,
          ...options.clientOptions,
        },
      });
      kits.push(k);
      return k;
    };
    const start = async (posthog: MiddlewareOptions | false) => {
      const app = await bridge.start({ posthog, routes: routes(bridge) });
      apps.push(app);
      return app;
    };
    const events = async (k: PostHogKit = kit) => {
      await k.flush();
      return emulator.events;
    };
    const get = (app: RunningApp, path: string, headers: Record<string, string> = {}) =>
      fetch(`${app.url}${path}`, { headers });

    beforeAll(async () => {
      emulator = await startEmulator({ flags: [flag('beta', { rollout: 100 })] });
    });
    afterAll(async () => {
      await Promise.all(apps.map((a) => a.close()));
      await Promise.all(kits.map((k) => k.shutdown(1_000)));
      await emulator.close();
    });
    beforeEach(() => {
      emulator.reset();
      kit = makeKit();
    });

    describe('ids', () => {
      it('distinct and session id come from the tracing headers, sanitised', async () => {
        const app = await start({ kit });
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
        const app = await start({ kit });
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
          kit,
          resolveUser: (req) => ({ id: `custom-${req.header('x-account')}` }),
        });
        await get(app, '/capture', { 'x-account': '9' });
        const all = (await events()).filter((e) => e.event.endsWith('_event'));
        expect(all.map((e) => e.distinctId)).toEqual(['custom-9', 'custom-9']);
      });
    });

    describe('tags', () => {
      it('$current_url, $request_method, $request_path, $ip, $user_agent on events of a handler', async () => {
        const app = await start({ kit });
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
        if (!bridge.skip?.clientIp)
          expect(String(event?.properties.$ip)).toMatch(/127\.0\.0\.1|::1/);
      });

      it('extraTags and tagMap', async () => {
        const app = await start({
          kit,
          extraTags: (req) => ({ tenant: req.header('x-tenant') ?? 'none' }),
          tagMap: (tags) => ({ ...tags, $user_agent: undefined, mapped: 'yes' }),
        });
        await get(app, '/capture', { 'x-tenant': 'acme', 'user-agent': 'hidden/1' });
        const event = (await events()).find((e) => e.event === 'module_event');
        expect(event?.properties).toMatchObject({ tenant: 'acme', mapped: 'yes', via: 'module' });
        expect(event?.properties.$user_agent).toBeUndefined();
      });
    });

    it('requestFilter false: no context, no capture, the handler still runs', async () => {
      const app = await start({
        kit,
        requestFilter: (req) => req.path !== '/health',
        captureViews: true,
      });
      const res = await get(app, '/health', { 'x-posthog-distinct-id': 'u' });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ healthy: true });
      expect(await events()).toEqual([]);
    });

    it('capture and featureEnabled, module level and through the request slot', async () => {
      const app = await start({ kit });
      const res = await get(app, '/flag', { 'x-posthog-distinct-id': 'flag-user' });
      expect(await res.json()).toEqual({ module: true, slot: true });
      await get(app, '/capture', { 'x-posthog-distinct-id': 'cap-user' });
      const all = await events();
      expect(
        all.filter((e) => e.event === '$feature_flag_called').map((e) => e.distinctId),
      ).toEqual(['flag-user']);
      expect(
        all
          .filter((e) => e.event.endsWith('_event'))
          .map((e) => [e.event, e.distinctId, e.properties.via]),
      ).toEqual([
        ['module_event', 'cap-user', 'module'],
        ['slot_event', 'cap-user', 'slot'],
      ]);
    });

    describe('errors', () => {
      it('no status or >= 500: captured once with the ids and $response_status_code; 4xx: not', async () => {
        const app = await start({ kit });
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
        }
        const status = Object.fromEntries(
          exceptions.map((e) => [exceptionValue(e), e.properties.$response_status_code]),
        );
        expect(status).toEqual({ boom: 500, 'bad gateway': 502 });
      });

      it('shouldCaptureError overrides the policy', async () => {
        const app = await start({ kit, shouldCaptureError: (_error, status) => status === 404 });
        await get(app, '/boom');
        await get(app, '/boom/404');
        const exceptions = (await events()).filter((e) => e.event === '$exception');
        expect(exceptions.map(exceptionValue)).toEqual(['missing']);
        expect(exceptions[0]?.properties.$response_status_code).toBe(404);
      });

      it('thrown non-Error values are captured', async () => {
        const app = await start({ kit });
        expect((await get(app, '/boom/string')).status).toBe(500);
        const exceptions = (await events()).filter((e) => e.event === '$exception');
        expect(exceptions).toHaveLength(1);
        expect(JSON.stringify(exceptions[0]?.properties.$exception_list)).toContain(
          'a thrown string',
        );
      });

      it("the framework's own responses are unchanged: status, headers, body", async () => {
        const bare = await start(false);
        const withKit = await start({ kit, captureViews: true });
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
    });

    describe('view capture', () => {
      it('is off by default', async () => {
        const app = await start({ kit });
        await get(app, '/ok');
        expect(await events()).toEqual([]);
      });

      it('on: one event per request, with the status and the matched route', async () => {
        const app = await start({ kit, captureViews: true });
        await get(app, '/items/7', { 'x-posthog-distinct-id': 'viewer' });
        await get(app, '/boom/404', { 'x-posthog-distinct-id': 'viewer' });
        const views = (await events()).filter((e) => e.event === '$pageview');
        expect(views).toHaveLength(2);
        expect(views[0]).toMatchObject({
          distinctId: 'viewer',
          properties: { $response_status_code: 200, $request_path: '/items/7' },
        });
        expect(views[1]?.properties.$response_status_code).toBe(404);
        if (!bridge.skip?.matchedRoute)
          expect(views[0]?.properties.$request_route).toBe('/items/:id');
      });
    });

    it('1,000 concurrent requests with random awaits: every event has its own request ids', async () => {
      const app = await start({ kit });
      const count = 1000;
      const responses = await Promise.all(
        Array.from({ length: count }, (_, n) =>
          get(app, `/slow/${n}`, {
            'x-posthog-distinct-id': `user-${n}`,
            'x-posthog-session-id': `s-${n}`,
          }).then((r) => r.status),
        ),
      );
      expect(responses.every((s) => s === 200)).toBe(true);
      const all = await events();
      for (const name of ['slow', 'slow_slot']) {
        const mine = all.filter((e) => e.event === name);
        expect(mine).toHaveLength(count);
        for (const e of mine) {
          const n = e.properties.n;
          expect(e.distinctId).toBe(`user-${n}`);
          expect(e.properties.$session_id).toBe(`s-${n}`);
          expect(e.properties.$request_path).toBe(`/slow/${n}`);
        }
      }
    }, 60_000);

    it('a disabled kit: the app behaves exactly as without the adapter', async () => {
      const disabled = createPostHogKit({ env: {}, host: emulator.url });
      const bare = await start(false);
      const withDisabled = await start({ kit: disabled, captureViews: true });
      for (const path of ['/ok', '/capture', '/flag', '/boom', '/boom/404', '/no/such/route']) {
        const [a, b] = await Promise.all([get(bare, path), get(withDisabled, path)]);
        expect({ path, status: b.status, body: await comparableBody(b, withDisabled) }).toEqual({
          path,
          status: a.status,
          body:
            path === '/flag'
              ? JSON.stringify({ module: false, slot: false })
              : await comparableBody(a, bare),
        });
        // The bare app's slot is absent (null), so /flag's length differs by design.
        if (path !== '/flag') expect(comparableHeaders(b)).toEqual(comparableHeaders(a));
      }
      expect(emulator.requests).toHaveLength(0);
    });

    it('the request slot carries the ids even without AsyncLocalStorage', async () => {
      // A storage that keeps nothing: module-level calls see no context at all.
      const noAls = makeKit({
        contextStorage: { run: (_scope, fn) => fn(), get: () => undefined },
      });
      const app = await start({ kit: noAls });
      await get(app, '/capture', {
        'x-posthog-distinct-id': 'slot-only',
        'x-posthog-session-id': 'sess-x',
      });
      const all = await events(noAls);
      expect(all.find((e) => e.event === 'slot_event')).toMatchObject({
        distinctId: 'slot-only',
        properties: { $session_id: 'sess-x', $request_path: '/capture' },
      });
    });
  });
}

// Headers that legitimately differ between two servers answering the same thing.
const VOLATILE = new Set(['date', 'keep-alive', 'connection']);

// A body may echo the request URL (h3's 404 message), and each app has its own port.
async function comparableBody(res: Response, app: RunningApp): Promise<string> {
  return (await res.text()).replaceAll(app.url, '<app>');
}

function comparableHeaders(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  res.headers.forEach((value, key) => {
    if (!VOLATILE.has(key)) out[key] = value;
  });
  return out;
}
