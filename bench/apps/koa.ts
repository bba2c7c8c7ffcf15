import type { Server } from 'node:http';
import Router from '@koa/router';
import { posthog } from '@posthog-kit/koa';
import Koa from 'koa';
import { type Config, floorStorage, ourKit, ourWork } from './common.ts';

export async function start(config: Config, port: number): Promise<Server> {
  const app = new Koa();
  const router = new Router();
  if (config === 'als-floor') app.use((_ctx, next) => floorStorage.run({ n: 1 }, next));
  if (config === 'context' || config === 'work') app.use(posthog({ kit: await ourKit() }));
  if (config === 'work') {
    router.get('/hello', async (ctx) => {
      ctx.body = await ourWork();
    });
  } else {
    // Bare's handler: the difference is the middleware alone.
    router.get('/hello', (ctx) => {
      ctx.body = 'hello';
    });
  }
  app.use(router.routes());
  return app.listen(port, '127.0.0.1');
}
