// The bridge the conformance suite (and any suite that drives every adapter) uses for Hono.
import type { AddressInfo } from 'node:net';
import { type ServerType, serve } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { type AdapterBridge, type AppSpec, streamOf } from '@posthog-kit/conformance';
import { statusOfError } from '@posthog-kit/core';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { type PostHogVariables, posthog } from '../src/index.ts';

/** The app's Env: ours plus the slot the fake auth middleware fills. */
type AppEnv = { Variables: PostHogVariables & { user?: unknown } };

/** Serves a Hono app with @hono/node-server on a loopback port. */
export async function listen(app: {
  fetch(request: Request, env: unknown): Response | Promise<Response>;
}): Promise<{ url: string; close(): Promise<void> }> {
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function build({ posthog: options, routes }: AppSpec, connInfo: boolean): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  if (options) app.use(posthog({ ...options, getConnInfo: connInfo ? getConnInfo : undefined }));
  app.use(async (c, next) => {
    const user = c.req.header('x-test-user');
    if (user) c.set('user', JSON.parse(user));
    await next();
  });
  for (const route of routes) {
    app.on(route.method, route.path, async (c) => {
      const out = await route.handler({
        posthog: options ? c.var.posthog : undefined,
        params: c.req.param() as Record<string, string>,
        body: route.method === 'POST' ? await c.req.json() : undefined,
      });
      if (out.stream) {
        return c.body(streamOf(out.stream), (out.status ?? 200) as 200, {
          'content-type': 'text/plain',
        });
      }
      return c.json(out.body ?? null, (out.status ?? 200) as 200, out.headers);
    });
  }
  // The app's own error handler, the same with and without the adapter: an error's
  // status is honoured (Hono's default answers 500 to anything but an HTTPException).
  app.onError((error, c) => {
    if (error instanceof HTTPException) return error.getResponse();
    return c.json({ error: 'internal' }, (statusOfError(error) ?? 500) as 500);
  });
  return app;
}

export const honoBridge: AdapterBridge = {
  name: 'Hono 4',
  httpError: (status, message) =>
    new HTTPException(status as ConstructorParameters<typeof HTTPException>[0], { message }),
  start: (spec) => listen(build(spec, true)),
  // Workers: app.fetch with an execution context whose waitUntil keeps the flush.
  async serverless(spec) {
    const app = build(spec, false);
    return async (request, waitUntil) =>
      app.fetch(request, {}, { waitUntil, passThroughOnException: () => {}, props: {} });
  },
};
