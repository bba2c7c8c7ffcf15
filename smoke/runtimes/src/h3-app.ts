// The smoke app on h3: a capture through the request's slot and, after an await, through
// the module-level sugar (which finds the request there only with AsyncLocalStorage), a flag,
// an error.
import { capture } from '@posthog-kit/core';
import { getPostHog, type PostHogH3Options, posthog } from '@posthog-kit/h3';
import { H3 } from 'h3';

export function createH3App(runtime: string, options: PostHogH3Options): H3 {
  const app = new H3();
  app.use(posthog(options));
  app.get('/capture', async (event) => {
    getPostHog(event).capture('smoke_slot', { properties: { runtime } });
    await new Promise((resolve) => setTimeout(resolve, 1));
    capture('smoke_module', { properties: { runtime } });
    return { runtime };
  });
  app.get('/flag', async (event) => ({
    flag: await getPostHog(event).featureEnabled('smoke-flag'),
  }));
  app.get('/boom', () => {
    throw new Error(`boom on ${runtime}`);
  });
  return app;
}
