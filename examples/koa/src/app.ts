// The app: the adapter first, a stand-in auth middleware, then the routes.
import Router from '@koa/router';
import { capture, featureEnabled, type PostHogKit } from '@posthog-kit/core';
import { posthog } from '@posthog-kit/koa';
import Koa from 'koa';

export function createApp(kit?: PostHogKit): Koa {
  const app = new Koa();
  app.use(posthog({ kit, captureViews: true }));

  // Stands in for your auth middleware (koa-passport, koa-jwt): a user from a header.
  app.use(async (ctx, next) => {
    const userId = ctx.get('x-user-id');
    if (userId) ctx.state.user = { id: userId, email: `${userId}@example.com` };
    await next();
  });

  const router = new Router();

  router.post('/signup', async (ctx) => {
    const body = await readJson(ctx.req);
    capture('signed_up', { properties: { plan: body.plan ?? 'free' } });
    ctx.status = 201;
    ctx.body = { welcome: true };
  });

  // Behind a flag: 404 for users without it (a 4xx is not captured as an exception).
  router.get('/new-dashboard', async (ctx) => {
    if (!(await featureEnabled('new-dashboard'))) ctx.throw(404);
    ctx.state.posthog.capture('new_dashboard_viewed');
    ctx.body = { dashboard: 'v2' };
  });

  router.get('/reports/:id', () => {
    throw new Error('report generator crashed');
  });

  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

// Koa has no body parser built in; @koa/bodyparser does this in a real app.
async function readJson(req: AsyncIterable<Uint8Array>): Promise<{ plan?: string }> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of req) chunks.push(chunk);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as { plan?: string };
  } catch {
    return {};
  }
}
