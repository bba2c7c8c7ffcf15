// The smoke app on Hono: a capture through the request's slot and, after an await, through
// the module-level sugar (which finds the request there only with AsyncLocalStorage), a flag,
// an error.
import { capture } from '@posthog-kit/core';
import { type PostHogEnv, type PostHogHonoOptions, posthog } from '@posthog-kit/hono';
import { Hono } from 'hono';

export function createHonoApp(runtime: string, options: PostHogHonoOptions): Hono<PostHogEnv> {
  const app = new Hono<PostHogEnv>();
  app.use(posthog(options));
  app.get('/capture', async (c) => {
    c.var.posthog.capture('smoke_slot', { properties: { runtime } });
    await new Promise((resolve) => setTimeout(resolve, 1));
    capture('smoke_module', { properties: { runtime } });
    return c.json({ runtime });
  });
  app.get('/flag', async (c) => c.json({ flag: await c.var.posthog.featureEnabled('smoke-flag') }));
  app.get('/boom', () => {
    throw new Error(`boom on ${runtime}`);
  });
  return app;
}
