import type { Server } from 'node:http';
import { posthog, posthogErrorHandler } from '@posthog-kit/express';
import express from 'express';
import { setupExpressErrorHandler, setupExpressRequestContext } from 'posthog-node';
import { type Config, floorStorage, ourKit, ourWork, theirClient, theirWork } from './common.ts';

export async function start(config: Config, port: number): Promise<Server> {
  const app = express();
  if (config === 'bare' || config === 'als-floor') {
    if (config === 'als-floor') app.use((_req, _res, next) => floorStorage.run({ n: 1 }, next));
    app.get('/hello', (_req, res) => {
      res.send('hello');
    });
  } else if (config === 'context' || config === 'work') {
    const kit = await ourKit();
    app.use(posthog({ kit }));
    // Context only keeps bare's handler: the difference is the middleware alone.
    if (config === 'work') {
      app.get('/hello', async (_req, res) => {
        res.send(await ourWork());
      });
    } else {
      app.get('/hello', (_req, res) => {
        res.send('hello');
      });
    }
    app.use(posthogErrorHandler());
  } else {
    const client = await theirClient();
    setupExpressRequestContext(client, app);
    if (config === 'posthog-work') {
      app.get('/hello', async (_req, res) => {
        res.send(await theirWork(client));
      });
    } else {
      app.get('/hello', (_req, res) => {
        res.send('hello');
      });
    }
    setupExpressErrorHandler(client, app);
  }
  return app.listen(port, '127.0.0.1');
}
