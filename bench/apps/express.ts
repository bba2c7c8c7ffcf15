import type { Server } from 'node:http';
import { posthog, posthogErrorHandler } from '@posthog-kit/express';
import express, { type RequestHandler } from 'express';
import { setupExpressErrorHandler, setupExpressRequestContext } from 'posthog-node';
import { type Config, floorStorage, ourKit, ourWork, theirClient, theirWork } from './common.ts';

// Every configuration without work answers with bare's handler: the difference is the middleware.
const hello: RequestHandler = (_req, res) => {
  res.send('hello');
};

export async function start(config: Config, port: number): Promise<Server> {
  const app = express();
  if (config === 'bare' || config === 'als-floor') {
    if (config === 'als-floor') app.use((_req, _res, next) => floorStorage.run({ n: 1 }, next));
    app.get('/hello', hello);
  } else if (config === 'context' || config === 'work') {
    const kit = await ourKit();
    app.use(posthog({ kit }));
    app.get(
      '/hello',
      config === 'work'
        ? async (_req, res) => {
            res.send(await ourWork());
          }
        : hello,
    );
    app.use(posthogErrorHandler());
  } else {
    const client = await theirClient();
    setupExpressRequestContext(client, app);
    app.get(
      '/hello',
      config === 'posthog-work'
        ? async (_req, res) => {
            res.send(await theirWork(client));
          }
        : hello,
    );
    setupExpressErrorHandler(client, app);
  }
  return app.listen(port, '127.0.0.1');
}
