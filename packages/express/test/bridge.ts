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

export const expressBridge: AdapterBridge = {
  name: 'Express 5',
  httpError: (status, message) => new HttpError(status, message),
  async start({ posthog: options, routes }) {
    const app = express();
    // Production mode: error pages without stack traces, comparable with and without the adapter.
    app.set('env', 'production');
    if (options) app.use(posthog(options));
    app.use((req, _res, next) => {
      const user = req.get('x-test-user');
      if (user) (req as Request & { user?: unknown }).user = JSON.parse(user);
      next();
    });
    for (const route of routes) {
      app[route.method === 'GET' ? 'get' : 'post'](route.path, async (req, res) => {
        const out = await route.handler({
          posthog: options ? req.posthog : undefined,
          params: req.params as Record<string, string>,
        });
        res.status(out.status ?? 200);
        for (const [k, v] of Object.entries(out.headers ?? {})) res.set(k, v);
        res.json(out.body ?? null);
      });
    }
    if (options) app.use(posthogErrorHandler());
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
