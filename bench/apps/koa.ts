import type { Server } from 'node:http';
import Router from '@koa/router';
import { posthog } from '@posthog-kit/koa';
import Koa from 'koa';
import { type Config, floorStorage, ourKit, ourWork } from './common.ts';

export async function start(config: Config, port: number): Promise<Server> {
  const app = new Koa();
  const router = new Router();
  if (config === 'bare' || config === 'als-floor') {
    if (config === 'als-floor') app.use((_ctx, next) => floorStorage.run({ n: 1 }, next));
    router.get('/hello', (ctx) => {
      ctx.body = 'hello';
    });
  } else {
    const kit = await ourKit();
    app.use(posthog({ kit }));
    // Context only keeps bare's handler: the difference is the middleware alone.
    if (config === 'work') {
      router.get('/hello', async (ctx) => {
        ctx.body = await ourWork();
      });
    } else {
      router.get('/hello', (ctx) => {
        ctx.body = 'hello';
      });
    }
  }
  app.use(router.routes());
  return app.listen(port, '127.0.0.1');
}
