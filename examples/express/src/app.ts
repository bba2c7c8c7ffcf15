// The app: the adapter first, routes, the error handler last.
import { capture, type PostHogKit } from '@posthog-kit/core';
import { posthog, posthogErrorHandler } from '@posthog-kit/express';
import express, { type Express } from 'express';

export function createApp(kit?: PostHogKit): Express {
  const app = express();
  app.use(express.json());
  app.use(posthog({ kit, captureViews: true }));

  // Stands in for your auth middleware: a user from a header.
  app.use((req, _res, next) => {
    const userId = req.get('x-user-id');
    if (userId)
      (req as express.Request & { user?: unknown }).user = {
        id: userId,
        email: `${userId}@example.com`,
      };
    next();
  });

  app.post('/signup', (req, res) => {
    capture('signed_up', { properties: { plan: req.body?.plan ?? 'free' } });
    res.status(201).json({ welcome: true });
  });

  app.get('/dashboard', async (req, res) => {
    const v2 = await req.posthog.featureEnabled('new-dashboard');
    res.json({ dashboard: v2 ? 'v2' : 'v1' });
  });

  app.get('/reports/:id', () => {
    throw new Error('report generator crashed');
  });

  app.use(posthogErrorHandler());
  return app;
}
