import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPostHogKit, type PostHogKit } from '@posthog-kit/core';
import { type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import express, { type Express, type Request, type RequestHandler } from 'express';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { posthog, posthogErrorHandler } from '../src/index.ts';

let emulator: PostHogEmulator;
let kit: PostHogKit;
const servers: Server[] = [];

async function listen(app: Express): Promise<string> {
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const events = async () => {
  await kit.flush();
  return emulator.events;
};

beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await emulator.close();
});
beforeEach(() => {
  emulator.reset();
  kit = createPostHogKit({ env: {}, apiKey: emulator.projectApiKey, host: emulator.url });
  return () => kit.shutdown(1_000);
});

// Compile-time: req.posthog is typed on every Express request.
const typed: RequestHandler = (req, res) => {
  req.posthog.capture('typed', { properties: { ok: true } });
  res.end();
};

describe('Express specifics', () => {
  it("$ip follows Express's trust proxy setting", async () => {
    for (const trust of [false, true]) {
      const app = express();
      app.set('trust proxy', trust);
      app.use(posthog({ kit }));
      app.get('/', typed);
      const url = await listen(app);
      await fetch(url, {
        headers: { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https' },
      });
    }
    const [direct, proxied] = (await events()).filter((e) => e.event === 'typed');
    expect(direct?.properties.$ip).toMatch(/127\.0\.0\.1/);
    expect(direct?.properties.$current_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(proxied?.properties.$ip).toBe('203.0.113.7');
    expect(proxied?.properties.$current_url).toMatch(/^https:\/\//);
  });

  it('the matched route includes the router mount path', async () => {
    const app = express();
    app.use(posthog({ kit, captureViews: true }));
    const api = express.Router();
    api.get('/users/:id', (_req, res) => {
      res.send('user');
    });
    app.use('/api', api);
    const url = await listen(app);
    await fetch(`${url}/api/users/5?tab=1`);
    const [view] = (await events()).filter((e) => e.event === '$pageview');
    expect(view?.properties).toMatchObject({
      $request_route: '/api/users/:id',
      $request_path: '/api/users/5',
      $response_status_code: 200,
    });
  });

  it('a Passport-style req.user (Mongo _id) is the default user; resolveUser overrides it', async () => {
    const app = express();
    app.use(posthog({ kit }));
    app.use((req, _res, next) => {
      (req as Request & { user?: unknown }).user = {
        _id: { toString: () => '64f0c0ffee' },
        email: 'p@x.io',
      };
      next();
    });
    app.get('/', typed);
    const url = await listen(app);
    await fetch(url);
    const other = express();
    other.use(posthog({ kit, resolveUser: (req) => ({ id: `org:${req.raw.get('x-org')}` }) }));
    other.get('/', typed);
    await fetch(await listen(other), { headers: { 'x-org': '3' } });
    const [passport, custom] = (await events()).filter((e) => e.event === 'typed');
    expect(passport).toMatchObject({ distinctId: '64f0c0ffee', properties: { email: 'p@x.io' } });
    expect(custom?.distinctId).toBe('org:3');
  });

  it("an error without a status takes the status the response already has, as Express's final handler does", async () => {
    const app = express();
    app.set('env', 'production');
    app.use(posthog({ kit }));
    app.get('/', (_req, res) => {
      res.status(503);
      throw new Error('overloaded');
    });
    app.use(posthogErrorHandler());
    const res = await fetch(await listen(app));
    expect(res.status).toBe(503);
    const [exception] = (await events()).filter((e) => e.event === '$exception');
    expect(exception?.properties.$response_status_code).toBe(503);
  });

  it('posthogErrorHandler alone (no posthog()) captures with its own options', async () => {
    const app = express();
    app.set('env', 'production');
    app.get('/', () => {
      throw new Error('unwrapped');
    });
    app.use(posthogErrorHandler({ kit }));
    await fetch(await listen(app), { headers: { 'x-posthog-distinct-id': 'alone' } });
    const [exception] = (await events()).filter((e) => e.event === '$exception');
    expect(exception).toMatchObject({
      distinctId: 'alone',
      properties: { $response_status_code: 500 },
    });
  });

  it('a request filtered out is not captured by the error handler either', async () => {
    const app = express();
    app.set('env', 'production');
    app.use(posthog({ kit, requestFilter: () => false }));
    app.get('/', () => {
      throw new Error('filtered');
    });
    app.use(posthogErrorHandler());
    expect((await fetch(await listen(app))).status).toBe(500);
    expect(await events()).toEqual([]);
  });

  it("the user's own error handler after ours still decides the response", async () => {
    const app = express();
    app.use(posthog({ kit }));
    app.get('/', () => {
      throw Object.assign(new Error('teapot'), { status: 418 });
    });
    app.use(posthogErrorHandler());
    app.use(((error, _req, res, _next) => {
      res.status(error.status).json({ handled: error.message });
    }) as express.ErrorRequestHandler);
    const res = await fetch(await listen(app));
    expect(res.status).toBe(418);
    expect(await res.json()).toEqual({ handled: 'teapot' });
    expect((await events()).filter((e) => e.event === '$exception')).toEqual([]);
  });
});
