// The app: the adapter first, a stand-in auth middleware, then the routes. Nothing here is
// Node-specific: the same app runs on Bun, Deno and Workers (see main.ts for Node).
import { capture, featureEnabled, type PostHogKit } from '@posthog-kit/core';
import { type PostHogHonoOptions, type PostHogVariables, posthog } from '@posthog-kit/hono';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';

/** Our variables plus the user your auth middleware sets. */
export type AppEnv = { Variables: PostHogVariables & { user?: { id: string; email: string } } };

export function createApp(
  kit?: PostHogKit,
  getConnInfo?: PostHogHonoOptions['getConnInfo'],
): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(posthog({ kit, captureViews: true, getConnInfo }));

  // Stands in for your auth middleware (hono/jwt, better-auth...): c.set('user', ...).
  app.use(async (c, next) => {
    const userId = c.req.header('x-user-id');
    if (userId) c.set('user', { id: userId, email: `${userId}@example.com` });
    await next();
  });

  app.post('/signup', async (c) => {
    const body = await c.req.json<{ plan?: string }>().catch(() => ({}) as { plan?: string });
    // Module-level sugar: the request's ids and tags come from the context (AsyncLocalStorage).
    capture('signed_up', { properties: { plan: body.plan ?? 'free' } });
    return c.json({ welcome: true }, 201);
  });

  // Behind a flag: 404 for users without it (a 4xx is not captured as an exception).
  app.get('/new-dashboard', async (c) => {
    if (!(await featureEnabled('new-dashboard'))) throw new HTTPException(404);
    // The request's slot: bound to this request on every runtime, AsyncLocalStorage or not.
    c.var.posthog.capture('new_dashboard_viewed');
    return c.json({ dashboard: 'v2' });
  });

  app.get('/reports/:id', () => {
    throw new Error('report generator crashed');
  });

  // Your error handler answers as before; the adapter only reports the error.
  app.onError((error, c) =>
    error instanceof HTTPException ? error.getResponse() : c.json({ error: 'internal' }, 500),
  );
  return app;
}
