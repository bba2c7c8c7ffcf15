import {
  capture,
  createPostHogKit,
  featureEnabled,
  type MiddlewareOptions,
  type PostHogKit,
  type PostHogKitOptions,
  withContext,
} from '@posthog-kit/core';
import {
  flag,
  type PostHogEmulator,
  type RecordedEvent,
  startEmulator,
} from '@posthog-kit/testing';
import type { AdapterBridge, AppSpec, RouteSpec, RunningApp, TestRunner } from './types.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The routes every app under test has. */
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
      method: 'POST',
      path: '/echo',
      handler: async ({ body }) => {
        await sleep(1);
        capture('body_received', { properties: { keys: Object.keys(body ?? {}).join(',') } });
        return { body: { echoed: body ?? null } };
      },
    },
    {
      method: 'GET',
      path: '/nested',
      handler: async () => {
        await withContext({ distinctId: 'inner-user', tags: { inner: 'yes' } }, async () => {
          await sleep(1);
          capture('nested_inner');
        });
        capture('nested_outer');
        return { body: { ok: true } };
      },
    },
    {
      method: 'GET',
      path: '/stream',
      handler: () => {
        capture('stream_started');
        return { stream: ['chunk-1 ', 'chunk-2 ', 'chunk-3'] };
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

/** What every capability's cases get: the bridge, the runner, and the running pieces. */
export interface Suite {
  bridge: AdapterBridge;
  t: TestRunner;
  emulator(): PostHogEmulator;
  /** This test's kit: the emulator's, never flushing by itself. */
  kit(): PostHogKit;
  makeKit(options?: PostHogKitOptions): PostHogKit;
  start(posthog: MiddlewareOptions | false, mode?: AppSpec['mode']): Promise<RunningApp>;
  spec(posthog: MiddlewareOptions | false): AppSpec;
  /** Flushes the kit, then everything the emulator received. */
  events(kit?: PostHogKit): Promise<readonly RecordedEvent[]>;
  get(app: RunningApp, path: string, headers?: Record<string, string>): Promise<Response>;
  post(
    app: RunningApp,
    path: string,
    body: unknown,
    headers?: Record<string, string>,
  ): Promise<Response>;
}

/** Registers the setup and teardown of one suite run and gives its cases their context. */
export function harness(bridge: AdapterBridge, t: TestRunner): Suite {
  let emulator: PostHogEmulator | undefined;
  let kit: PostHogKit | undefined;
  const apps: RunningApp[] = [];
  const kits: PostHogKit[] = [];
  const running = () => {
    if (!emulator) throw new Error('conformance: the emulator is not running');
    return emulator;
  };
  const makeKit = (options: PostHogKitOptions = {}) => {
    const k = createPostHogKit({
      env: {},
      apiKey: running().projectApiKey,
      host: running().url,
      shutdownHooks: false,
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
  const spec = (posthog: MiddlewareOptions | false): AppSpec => ({
    posthog,
    routes: routes(bridge),
  });

  t.beforeAll(async () => {
    emulator = await startEmulator({ flags: [flag('beta', { rollout: 100 })] });
  });
  t.afterAll(async () => {
    await Promise.all(apps.map((a) => a.close()));
    await Promise.all(kits.map((k) => k.shutdown(1_000)));
    await emulator?.close();
  });
  t.beforeEach(() => {
    running().reset();
    kit = makeKit();
  });

  return {
    bridge,
    t,
    emulator: running,
    kit: () => {
      if (!kit) throw new Error('conformance: no kit outside a test');
      return kit;
    },
    makeKit,
    spec,
    async start(posthog, mode) {
      const app = await bridge.start({ ...spec(posthog), mode });
      apps.push(app);
      return app;
    },
    async events(k) {
      await (k ?? kit)?.flush();
      return running().events;
    },
    get: (app, path, headers = {}) => fetch(`${app.url}${path}`, { headers }),
    post: (app, path, body, headers = {}) =>
      fetch(`${app.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      }),
  };
}

/** The value of an `$exception` event's first exception. */
export const exceptionValue = (e: RecordedEvent) =>
  (e.properties.$exception_list as Array<{ value?: string }> | undefined)?.[0]?.value;

// Headers that legitimately differ between two servers answering the same thing.
const VOLATILE = new Set(['date', 'keep-alive', 'connection']);

/** A body, with the app's own URL (each app has its own port) replaced. */
export async function comparableBody(res: Response, app: RunningApp): Promise<string> {
  return (await res.text()).replaceAll(app.url, '<app>');
}

/** The headers that should be equal with and without the adapter. */
export function comparableHeaders(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  res.headers.forEach((value, key) => {
    if (!VOLATILE.has(key)) out[key] = value;
  });
  return out;
}

/** A `NeutralResponse.stream` as a Web stream, a pause between chunks: for Fetch-model bridges. */
export function streamOf(chunks: readonly string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    async start(controller) {
      for (const chunk of chunks) {
        controller.enqueue(encoder.encode(chunk));
        await sleep(2);
      }
      controller.close();
    },
  });
}
