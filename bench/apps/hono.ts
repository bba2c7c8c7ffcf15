import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { posthog } from '@posthog-kit/hono';
import { Hono } from 'hono';
import { posthogHonoMiddleware } from 'posthog-node';
import { type Config, ourKit, ourWork, theirClient, theirWork } from './common.ts';

export async function start(config: Config, port: number): Promise<Server> {
  const app = new Hono();
  if (config === 'bare') {
    app.get('/hello', (c) => c.text('hello'));
  } else if (config === 'context' || config === 'work') {
    const kit = await ourKit();
    app.use(posthog({ kit }));
    // Context only keeps bare's handler: the difference is the middleware alone.
    if (config === 'work') app.get('/hello', async (c) => c.text(await ourWork()));
    else app.get('/hello', (c) => c.text('hello'));
  } else {
    const client = await theirClient();
    app.use('*', posthogHonoMiddleware(client));
    if (config === 'posthog-work') app.get('/hello', async (c) => c.text(await theirWork(client)));
    else app.get('/hello', (c) => c.text('hello'));
  }
  return serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }) as Server;
}
