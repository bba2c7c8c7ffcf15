import type { Server } from 'node:http';
// By path: bench/package.json does not list fastify yet (that is a lockfile update), so the
// adapter's build and the Fastify it pins (5.12.8) come from the adapter's own folder.
import { posthog } from '../../packages/fastify/dist/index.mjs';
import Fastify, {
  type RouteHandlerMethod,
} from '../../packages/fastify/node_modules/fastify/fastify.js';
import { type Config, floorStorage, ourKit, ourWork } from './common.ts';

// Every configuration without work answers with bare's handler: the difference is the plugin.
const hello: RouteHandlerMethod = (_request, reply) => {
  reply.send('hello');
};

export async function start(config: Config, port: number): Promise<Server> {
  const app = Fastify();
  if (config === 'als-floor') {
    app.addHook('onRequest', (_request, _reply, done) => floorStorage.run({ n: 1 }, done));
  }
  if (config === 'context' || config === 'work') {
    await app.register(posthog, { kit: await ourKit() });
  }
  app.get('/hello', config === 'work' ? async () => await ourWork() : hello);
  await app.listen({ port, host: '127.0.0.1' });
  return app.server;
}
