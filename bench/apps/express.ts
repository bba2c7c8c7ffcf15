import type { Server } from 'node:http';
import { posthog, posthogErrorHandler } from '@posthog-kit/express';
import express from 'express';
import { setupExpressErrorHandler, setupExpressRequestContext } from 'posthog-node';
import { type Config, ourKit, ourWork, theirClient, theirWork } from './common.ts';

export async function start(config: Config, port: number): Promise<Server> {
  const app = express();
  if (config === 'bare') {
    app.get('/hello', (_req, res) => {
      res.send('hello');
    });
  } else if (config === 'context' || config === 'work') {
    const kit = await ourKit();
    app.use(posthog({ kit }));
    app.get('/hello', async (_req, res) => {
      res.send(config === 'work' ? await ourWork() : 'hello');
    });
    app.use(posthogErrorHandler());
  } else {
    const client = await theirClient();
    setupExpressRequestContext(client, app);
    app.get('/hello', async (_req, res) => {
      res.send(config === 'posthog-work' ? await theirWork(client) : 'hello');
    });
    setupExpressErrorHandler(client, app);
  }
  return app.listen(port, '127.0.0.1');
}
