// The bridge the conformance suite (and any suite that drives every adapter) uses for h3.
import { type AdapterBridge, type AppSpec, streamOf } from '@posthog-kit/conformance';
import { type H3, H3 as H3App, HTTPError, serve } from 'h3';
import { posthog } from '../src/index.ts';

/** Serves an h3 app with h3's `serve` (srvx, as a Node server) on a loopback port. */
export async function listen(app: H3): Promise<{ url: string; close(): Promise<void> }> {
  const server = serve(app, {
    port: 0,
    hostname: '127.0.0.1',
    silent: true,
    gracefulShutdown: false,
  });
  await server.ready();
  return {
    url: (server.url as string).replace(/\/$/, ''),
    close: () => server.close(true),
  };
}

function build({ posthog: options, routes }: AppSpec): H3 {
  // silent: h3 would log each unhandled error to stderr; the responses are the same.
  const app = new H3App({ silent: true });
  if (options) app.use(posthog(options));
  app.use((event) => {
    const user = event.req.headers.get('x-test-user');
    if (user) event.context.user = JSON.parse(user);
  });
  for (const route of routes) {
    app.on(route.method, route.path, async (event) => {
      const out = await route.handler({
        posthog: options ? event.context.posthog : undefined,
        params: event.context.params ?? {},
        body: route.method === 'POST' ? await event.req.json() : undefined,
      });
      event.res.status = out.status ?? 200;
      for (const [k, v] of Object.entries(out.headers ?? {})) event.res.headers.set(k, v);
      if (out.stream) {
        event.res.headers.set('content-type', 'text/plain');
        return streamOf(out.stream);
      }
      return out.body ?? null;
    });
  }
  return app;
}

export const h3Bridge: AdapterBridge = {
  name: 'h3 v2',
  httpError: (status, message) => new HTTPError({ status, message }),
  start: (spec) => listen(build(spec)),
  // A serverless runtime hands h3 requests that carry the platform's waitUntil.
  async serverless(spec) {
    const app = build(spec);
    return async (request, waitUntil) => app.fetch(Object.assign(request, { waitUntil }));
  },
};
