// The smoke app as a Cloudflare Worker (SMOKE_FRAMEWORK binding: hono or h3). The kit is
// built on the first request, from the bindings; it never flushes on its own
// (flushInterval 0), so only the flush handed to ctx.waitUntil can deliver the events.
// With SMOKE_CONTEXT=node:async_hooks (for the `nodejs_als` flag, which has no `process`
// for core to find AsyncLocalStorage through) the Worker passes its own contextStorage.
import { type ContextStorage, configure } from '@posthog-kit/core';
import { serve } from 'h3';
import type { ExecutionContext } from 'hono';
import { createH3App } from './h3-app.ts';
import { createHonoApp } from './hono-app.ts';

type Env = Record<string, string | undefined>;
type WorkerFetch = (request: Request, env: Env, ctx: ExecutionContext) => Promise<Response>;

let handler: Promise<WorkerFetch> | undefined;

async function build(env: Env): Promise<WorkerFetch> {
  let contextStorage: ContextStorage | undefined;
  if (env.SMOKE_CONTEXT === 'node:async_hooks') {
    const { AsyncLocalStorage } = await import('node:async_hooks');
    const als = new AsyncLocalStorage();
    contextStorage = { run: (store, fn) => als.run(store, fn), get: () => als.getStore() };
  }
  // The default kit, so module-level sugar uses its context storage too.
  const kit = configure({
    env,
    contextStorage,
    clientOptions: { flushAt: 10_000, flushInterval: 0 },
  });
  const runtime = `workerd (${navigator.userAgent})`;
  if (env.SMOKE_FRAMEWORK === 'h3') {
    // h3's serve on workerd (srvx's Cloudflare adapter) takes the Worker's (request, env, ctx).
    return serve(createH3App(runtime, { kit }), { manual: true }).fetch as unknown as WorkerFetch;
  }
  const app = createHonoApp(runtime, { kit });
  return async (request, env, ctx) => app.fetch(request, env, ctx);
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    handler ??= build(env);
    return (await handler)(request, env, ctx);
  },
};
