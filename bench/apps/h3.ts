import { createServer, type Server } from 'node:http';
import { posthog } from '@posthog-kit/h3';
import { H3 } from 'h3';
import { toNodeHandler } from 'h3/node';
import { type Config, ourKit, ourWork } from './common.ts';

export async function start(config: Config, port: number): Promise<Server> {
  const app = new H3();
  if (config === 'bare') {
    app.get('/hello', () => 'hello');
  } else {
    const kit = await ourKit();
    app.use(posthog({ kit }));
    // Context only keeps bare's handler: the difference is the middleware alone.
    if (config === 'work') app.get('/hello', async () => await ourWork());
    else app.get('/hello', () => 'hello');
  }
  return createServer(toNodeHandler(app)).listen(port, '127.0.0.1');
}
