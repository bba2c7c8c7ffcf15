// The bridge the conformance and reliability suites drive this adapter through.
import { Readable } from 'node:stream';
import type { AdapterBridge } from '@posthog-kit/conformance';
import Fastify from 'fastify';
import { posthog } from '../src/index.ts';

/** A client error the way Fastify's own errors (and @fastify/sensible's) carry it. */
class HttpError extends Error {
  statusCode: number;
  constructor(statusCode: number, message: string) {
    super(message);
    this.statusCode = statusCode;
  }
}

async function* slowly(chunks: string[]) {
  for (const chunk of chunks) {
    yield chunk;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

export const fastifyBridge: AdapterBridge = {
  name: 'Fastify 5',
  httpError: (status, message) => new HttpError(status, message),
  async start({ posthog: options, routes }) {
    // No logger: Fastify's error responses never carry stacks, with or without it.
    const app = Fastify();
    if (options) await app.register(posthog, options);
    app.addHook('onRequest', async (request) => {
      const user = request.headers['x-test-user'];
      if (typeof user === 'string') (request as { user?: unknown }).user = JSON.parse(user);
    });
    for (const route of routes) {
      // Fastify's own JSON body parser.
      app.route({
        method: route.method,
        url: route.path,
        handler: async (request, reply) => {
          const out = await route.handler({
            posthog: options ? request.posthog : undefined,
            params: request.params as Record<string, string>,
            body: request.body,
          });
          reply.code(out.status ?? 200).headers(out.headers ?? {});
          if (out.stream) return reply.type('text/plain').send(Readable.from(slowly(out.stream)));
          return reply.type('application/json').send(JSON.stringify(out.body ?? null));
        },
      });
    }
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    return { url, close: () => app.close() };
  },
};
