import { isBuiltin } from 'node:module';
import { createContext, runInContext } from 'node:vm';
import type { PostHogEnv } from '@posthog-kit/hono';
import { flag, type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { rolldown } from 'rolldown';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Entry from '../src/neutral-entry.ts';
import { assertBuilt } from './built.ts';

// What a Worker has: Web APIs, and none of Node's globals (process, Buffer, require, global, ...).
const WEB_GLOBALS = [
  'AbortController',
  'AbortSignal',
  'Blob',
  'CompressionStream',
  'DecompressionStream',
  'DOMException',
  'Event',
  'EventTarget',
  'FormData',
  'Headers',
  'ReadableStream',
  'Request',
  'Response',
  'TextDecoder',
  'TextEncoder',
  'TransformStream',
  'URL',
  'URLSearchParams',
  'WritableStream',
  'atob',
  'btoa',
  'clearInterval',
  'clearTimeout',
  'console',
  'crypto',
  'fetch',
  'navigator',
  'performance',
  'queueMicrotask',
  'setInterval',
  'setTimeout',
  'structuredClone',
] as const;

let emulator: PostHogEmulator;
let output: { code: string; imports: string[]; dynamicImports: string[] };
const warnings: string[] = [];

beforeAll(async () => {
  assertBuilt();
  emulator = await startEmulator({ flags: [flag('edge-flag', { rollout: 100 })] });
  const bundle = await rolldown({
    input: new URL('../src/neutral-entry.ts', import.meta.url).pathname,
    platform: 'neutral',
    // What loads at load time: lazy imports (Node-only or optional parts) stay lazy.
    plugins: [
      {
        name: 'lazy-imports-stay-lazy',
        resolveId: (source, _importer, extra) =>
          extra.kind === 'dynamic-import' ? { id: source, external: true } : null,
      },
    ],
    resolve: {
      conditionNames: ['workerd', 'worker', 'browser', 'import', 'default'],
      mainFields: ['module', 'main'],
    },
    onLog: (level, log) => {
      if (level === 'warn') warnings.push(`${log.code}: ${log.message}`);
    },
  });
  const [chunk] = (await bundle.generate({ format: 'iife', name: 'bundle', codeSplitting: false }))
    .output;
  await bundle.close();
  output = chunk;
}, 30_000);
afterAll(() => emulator?.close());

describe('core, @posthog-kit/hono and @posthog-kit/h3 bundled for a worker target', () => {
  it('import no node: module (nor a bare Node builtin) statically', () => {
    expect(output.imports.filter((id) => id.startsWith('node:') || isBuiltin(id))).toEqual([]);
    // Everything loaded at load time is in the bundle.
    expect(output.imports).toEqual([]);
    expect(warnings.filter((w) => w.startsWith('UNRESOLVED_IMPORT'))).toEqual([]);
  });

  it('load and serve a request with Web globals only: no Node global at load time or in a request', async () => {
    const sandbox: Record<string, unknown> = {};
    for (const name of WEB_GLOBALS) sandbox[name] = globalThis[name as keyof typeof globalThis];
    const context = createContext(sandbox);
    expect(
      runInContext('typeof process + typeof Buffer + typeof require + typeof global', context),
    ).toBe('undefinedundefinedundefinedundefined');
    runInContext(output.code, context, { filename: 'worker-bundle.js' });
    const { core, honoAdapter, h3Adapter, Hono, H3 } = context.bundle as typeof Entry;

    const kit = core.createPostHogKit({
      env: {},
      apiKey: emulator.projectApiKey,
      host: emulator.url,
      clientOptions: { flushAt: 10_000, flushInterval: 0 },
    });
    const pending: Promise<unknown>[] = [];
    const waitUntil = (promise: Promise<unknown>) => {
      pending.push(promise);
    };
    const executionCtx = { waitUntil, passThroughOnException() {}, props: {} };

    const hono = new Hono<PostHogEnv>();
    hono.use(honoAdapter.posthog({ kit }));
    hono.get('/hono', async (c) => {
      c.var.posthog.capture('edge_hono');
      return c.json({ flag: await c.var.posthog.featureEnabled('edge-flag') });
    });
    const headers = { 'x-posthog-distinct-id': 'vm-user' };
    const res = await hono.fetch(new Request('http://worker/hono', { headers }), {}, executionCtx);
    expect(await res.json()).toEqual({ flag: true });

    const h3 = new H3({ silent: true });
    h3.use(h3Adapter.posthog({ kit }));
    h3.get('/h3', (event) => {
      h3Adapter.getPostHog(event).capture('edge_h3');
      throw new Error('edge error');
    });
    const request = Object.assign(new Request('http://worker/h3', { headers }), { waitUntil });
    expect((await h3.fetch(request)).status).toBe(500);

    await Promise.all(pending);
    expect(emulator.events.map((e) => [e.event, e.distinctId]).sort()).toEqual([
      ['$exception', 'vm-user'],
      ['$feature_flag_called', 'vm-user'],
      ['edge_h3', 'vm-user'],
      ['edge_hono', 'vm-user'],
    ]);
    await kit.shutdown(1_000);
  });
});
