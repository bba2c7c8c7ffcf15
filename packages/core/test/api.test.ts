import { type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { afterAll, afterEach, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { sugar } from '../src/default.ts';
import * as core from '../src/index.ts';
import {
  capture,
  configure,
  getClient,
  getKit,
  isEnabled,
  type PostHogApi,
  type PostHogHandle,
  type PostHogKit,
  PostHogKitError,
  type RequestInfo,
  RequestTracker,
  resetKit,
  shutdown,
} from '../src/index.ts';
import { kitFor } from './helpers.ts';

const info = (path = '/', headers: Record<string, string> = {}): RequestInfo => ({
  method: 'GET',
  url: `http://app.test${path}`,
  path,
  ip: undefined,
  raw: undefined,
  header: (name) => headers[name],
});

describe('one API, three ways to reach it', () => {
  it('the module, a kit and a request handle all implement PostHogApi', () => {
    // Each line fails to compile when one of them lacks a method of PostHogApi.
    expectTypeOf<PostHogKit>().toExtend<PostHogApi>();
    expectTypeOf<PostHogHandle>().toExtend<PostHogApi>();
    const moduleApi: PostHogApi = core;
    expect(typeof moduleApi.captureImmediate).toBe('function');
    // And at run time: every method of the interface exists on all three.
    const kit = core.createPostHogKit({ env: {} });
    const handle = new RequestTracker({ kit }).start(info()).posthog;
    for (const name of Object.keys(sugar) as (keyof PostHogApi)[]) {
      expect(typeof kit[name], `kit.${name}`).toBe('function');
      expect(typeof handle[name], `handle.${name}`).toBe('function');
    }
  });

  it("a handle's completion list shows the API, not the kit's internals", () => {
    const handle = new RequestTracker({ kit: core.createPostHogKit({ env: {} }) }).start(info())
      .posthog as unknown as Record<string, unknown>;
    for (const internal of ['own', 'parent', 'resolved', 'info', 'kit', 'scope']) {
      expect(internal in handle, internal).toBe(false);
    }
  });
});

describe('the sugar inside a request acts on the request kit', () => {
  let a: PostHogEmulator;
  let b: PostHogEmulator;
  let kit: PostHogKit;
  beforeAll(async () => {
    [a, b] = await Promise.all([startEmulator(), startEmulator()]);
  });
  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
  });
  afterEach(async () => {
    await kit?.shutdown(1_000);
    await resetKit(1_000);
    a.reset();
    b.reset();
  });

  it('capture, isEnabled, getClient and flush of the module follow the request kit; shutdown() stays the default kit', async () => {
    kit = kitFor(a);
    configure({ env: {}, apiKey: b.projectApiKey, host: b.url });
    const tracker = new RequestTracker({ kit, requestFilter: (req) => req.path !== '/health' });
    const tracked = tracker.start(info('/work', { 'x-posthog-distinct-id': 'u1' }));
    await tracker.run(tracked, async () => {
      capture('in_request');
      expect(isEnabled()).toBe(true);
      expect(getClient()).toBe(kit.client);
      await core.flush();
    });
    expect(a.events.map((e) => [e.event, e.distinctId])).toEqual([['in_request', 'u1']]);
    // A skipped request: the request kit's no-op, never the default kit.
    const skipped = tracker.start(info('/health', { 'x-posthog-distinct-id': 'u2' }));
    expect(skipped.tracked).toBe(false);
    tracker.run(skipped, () => capture('in_skipped_request'));
    capture('outside');
    await Promise.all([kit.flush(), getKit().flush()]);
    expect(a.events.map((e) => e.event)).toEqual(['in_request']);
    expect(b.events.map((e) => e.event)).toEqual(['outside']);
    // shutdown() inside a request stops the default kit, not the request's.
    await tracker.run(tracker.start(info('/x')), () => shutdown(1_000));
    expect(getKit().isShutdown).toBe(true);
    expect(kit.isShutdown).toBe(false);
  });
});

describe('settings given to several middleware factories', () => {
  let emulator: PostHogEmulator;
  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(() => emulator.close());
  afterEach(async () => {
    await resetKit(1_000);
    emulator.reset();
  });
  const settings = () => ({
    env: {},
    apiKey: emulator.projectApiKey,
    host: emulator.url,
    clientOptions: { fetchRetryCount: 0 },
  });

  it('the same settings mean one kit, which stays alive for both', async () => {
    const first = new RequestTracker(settings(), 'posthog()');
    // Per-request options may differ between the two.
    const second = new RequestTracker(
      { ...settings(), captureViews: true },
      'posthogErrorHandler()',
    );
    expect(second.kit).toBe(first.kit);
    expect(first.kit.isShutdown).toBe(false);
    const tracked = first.start(info('/', { 'x-posthog-distinct-id': 'same' }));
    first.run(tracked, () => capture('after_both'));
    await first.kit.flush();
    expect(emulator.events.map((e) => e.event)).toEqual(['after_both']);
  });

  it('different settings are an error that says what to do, and the first kit stays alive', () => {
    const first = new RequestTracker(settings(), 'posthog()');
    let error: unknown;
    try {
      new RequestTracker({ ...settings(), host: 'http://127.0.0.1:9' }, 'posthogErrorHandler()');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PostHogKitError);
    expect((error as Error).message).toBe(
      '[posthog-kit] posthogErrorHandler(): host differ from the settings another middleware set the default kit up with; give every middleware the same settings, or create each kit with createPostHogKit() and pass { kit } to its middleware',
    );
    expect(first.kit.isShutdown).toBe(false);
  });

  it('configure() after a middleware built the default kit leaves that kit alive', async () => {
    const middleware = new RequestTracker(settings(), 'posthog()');
    const replaced = configure({ env: {} });
    expect(getKit()).toBe(replaced);
    expect(middleware.kit.isShutdown).toBe(false);
    const tracked = middleware.start(info('/', { 'x-posthog-distinct-id': 'kept' }));
    middleware.run(tracked, () => capture('still_alive'));
    await middleware.kit.flush();
    expect(emulator.events.map((e) => e.event)).toEqual(['still_alive']);
    await middleware.kit.shutdown(1_000);
  });
});

describe('the published types', () => {
  it('show no internal member (own, parent, resolved, info) of a context or a handle', async () => {
    const { readFile } = await import('node:fs/promises');
    const dts = await readFile(new URL('../dist/index.d.mts', import.meta.url), 'utf8');
    expect(dts).toContain('interface PostHogHandle extends PostHogApi');
    expect(dts.match(/^\s+(?:readonly\s+)?(?:own|parent|resolved|info)\??:/gm)).toBeNull();
    expect(dts).not.toMatch(/class RequestScope/);
  });
});
