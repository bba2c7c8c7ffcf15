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
    app.get('/hello', async (c) => c.text(config === 'work' ? await ourWork() : 'hello'));
  } else {
    const client = await theirClient();
    app.use('*', posthogHonoMiddleware(client));
    app.get('/hello', async (c) =>
      c.text(config === 'posthog-work' ? await theirWork(client) : 'hello'),
    );
  }
  return serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }) as Server;
}
