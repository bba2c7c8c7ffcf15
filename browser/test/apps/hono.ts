import { getRequestListener } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { type PostHogVariables, posthog } from '@posthog-kit/hono';
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { type BrowserBridge, hitProperties, POSTHOG_HEADERS } from './types.ts';

export const honoBridge: BrowserBridge = {
  name: 'Hono',
  async api({ kit, cors: corsSetup, readPostHogCookie }) {
    const app = new Hono<{ Variables: PostHogVariables }>();
    // The docs' Hono CORS snippet: Hono's own middleware.
    if (corsSetup) {
      app.use(
        '/api/*',
        cors({
          origin: corsSetup.origin,
          credentials: corsSetup.credentials,
          allowHeaders: ['Content-Type', ...POSTHOG_HEADERS],
        }),
      );
    }
    app.use(posthog({ kit, readPostHogCookie, getConnInfo }));
    app.get('/api/hit', (c) => {
      const query = new URL(c.req.url).searchParams;
      c.var.posthog.capture('api hit', { properties: hitProperties(query) });
      return c.json({ ok: true });
    });
    return getRequestListener(app.fetch);
  },
};
