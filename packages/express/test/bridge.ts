// The bridge the conformance and reliability suites drive this adapter through.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AdapterBridge } from '@posthog-kit/conformance';
import express, { type Request } from 'express';
import { posthog, posthogErrorHandler } from '../src/index.ts';

class HttpError extends Error {
  status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const expressBridge: AdapterBridge = {
  name: 'Express 5',
  httpError: (status, message) => new HttpError(status, message),
  errorHandlerOnly: true,
  async start({ posthog: options, routes, mode }) {
    const app = express();
    // Production mode: error pages without stack traces, comparable with and without the adapter.
    app.set('env', 'production');
    if (options && mode !== 'error-handler-only') app.use(posthog(options));
    app.use(express.json());
    app.use((req, _res, next) => {
      const user = req.get('x-test-user');
      if (user) (req as Request & { user?: unknown }).user = JSON.parse(user);
      next();
    });
    for (const route of routes) {
      app[route.method === 'GET' ? 'get' : 'post'](route.path, async (req, res) => {
        const out = await route.handler({
          posthog: options && mode !== 'error-handler-only' ? req.posthog : undefined,
          params: req.params as Record<string, string>,
          body: req.body,
        });
        res.status(out.status ?? 200);
        for (const [k, v] of Object.entries(out.headers ?? {})) res.set(k, v);
        if (!out.stream) return void res.json(out.body ?? null);
        res.type('text/plain');
        for (const chunk of out.stream) {
          res.write(chunk);
          await sleep(2);
        }
        res.end();
      });
    }
    if (options) app.use(posthogErrorHandler(mode === 'error-handler-only' ? options : undefined));
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
