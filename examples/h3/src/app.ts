// The app: the adapter, a stand-in auth middleware, then the routes. Nothing here is
// Node-specific: the same app runs on Bun, Deno and Workers (see main.ts for Node).
import { capture, featureEnabled, type PostHogKit } from '@posthog-kit/core';
import { getPostHog, posthog } from '@posthog-kit/h3';
import { H3, HTTPError } from 'h3';

export function createApp(kit?: PostHogKit): H3 {
  const app = new H3();
  app.use(posthog({ kit, captureViews: true }));

  // Stands in for your auth middleware: event.context.user.
  app.use((event) => {
    const userId = event.req.headers.get('x-user-id');
    if (userId) event.context.user = { id: userId, email: `${userId}@example.com` };
  });

  app.post('/signup', async (event) => {
    const body = (await event.req.json().catch(() => ({}))) as { plan?: string };
    // Module-level sugar: the request's ids and tags come from the context (AsyncLocalStorage).
    capture('signed_up', { properties: { plan: body.plan ?? 'free' } });
    event.res.status = 201;
    return { welcome: true };
  });

  // Behind a flag: 404 for users without it (a 4xx is not captured as an exception).
  app.get('/new-dashboard', async (event) => {
    if (!(await featureEnabled('new-dashboard'))) throw new HTTPError({ status: 404 });
    // The request's slot: bound to this request on every runtime, AsyncLocalStorage or not.
    getPostHog(event).capture('new_dashboard_viewed');
    return { dashboard: 'v2' };
  });

  app.get('/reports/:id', () => {
    throw new Error('report generator crashed');
  });
  return app;
}
