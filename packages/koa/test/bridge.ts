// The bridge the conformance and reliability suites drive this adapter through.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import Router from '@koa/router';
import type { AdapterBridge } from '@posthog-kit/conformance';
import createHttpError from 'http-errors';
import Koa from 'koa';
import { posthog } from '../src/index.ts';

async function* slowly(chunks: string[]) {
  for (const chunk of chunks) {
    yield chunk;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

export const koaBridge: AdapterBridge = {
  name: 'Koa 3',
  // What ctx.throw(status, message) throws.
  httpError: (status, message) => createHttpError(status, message),
  async start({ posthog: options, routes }) {
    const app = new Koa();
    // No default error logging; responses are the same either way (Koa never sends stacks).
    app.silent = true;
    if (options) app.use(posthog(options));
    // A JSON body parser, the way koa-bodyparser reads one: the whole stream, then JSON.
    app.use(async (ctx, next) => {
      if (ctx.method === 'POST' && ctx.is('application/json')) {
        const chunks: Buffer[] = [];
        for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
        (ctx.request as { body?: unknown }).body = JSON.parse(Buffer.concat(chunks).toString());
      }
      await next();
    });
    app.use(async (ctx, next) => {
      const user = ctx.get('x-test-user');
      if (user) ctx.state.user = JSON.parse(user);
      await next();
    });
    const router = new Router();
    for (const route of routes) {
      router[route.method === 'GET' ? 'get' : 'post'](route.path, async (ctx) => {
        const out = await route.handler({
          posthog: options ? ctx.state.posthog : undefined,
          params: ctx.params,
          body: (ctx.request as { body?: unknown }).body,
        });
        ctx.status = out.status ?? 200;
        ctx.set(out.headers ?? {});
        if (out.stream) {
          ctx.type = 'text/plain';
          ctx.body = Readable.from(slowly(out.stream));
          return;
        }
        // A string body: Koa answers a null body with 204.
        ctx.type = 'application/json';
        ctx.body = JSON.stringify(out.body ?? null);
      });
    }
    app.use(router.routes());
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}`,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  },
};
