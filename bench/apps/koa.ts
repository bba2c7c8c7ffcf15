import type { Server } from 'node:http';
import Router from '@koa/router';
import { posthog } from '@posthog-kit/koa';
import Koa from 'koa';
import { type Config, ourKit, ourWork } from './common.ts';

export async function start(config: Config, port: number): Promise<Server> {
  const app = new Koa();
  const router = new Router();
  if (config === 'bare') {
    router.get('/hello', (ctx) => {
      ctx.body = 'hello';
    });
  } else {
    const kit = await ourKit();
    app.use(posthog({ kit }));
    router.get('/hello', async (ctx) => {
      ctx.body = config === 'work' ? await ourWork() : 'hello';
    });
  }
  app.use(router.routes());
  return app.listen(port, '127.0.0.1');
}
