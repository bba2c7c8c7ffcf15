import type { RequestListener } from 'node:http';
import { createServer } from 'node:http';
import Fastify, { type FastifyPluginAsync } from 'fastify';
import { type BrowserBridge, type CorsSetup, hitProperties, POSTHOG_HEADERS } from './types.ts';

/** What the test needs of @posthog-kit/fastify: the plugin (DESIGN: `app.register(posthog, options)`). */
export interface FastifyAdapter {
  posthog: FastifyPluginAsync<Record<string, unknown>>;
}

/** The docs' Fastify CORS snippet: plain headers in an onRequest hook, no package. */
function cors({ origin, credentials }: CorsSetup) {
  return async (
    req: { method: string; headers: Record<string, unknown> },
    reply: {
      header(name: string, value: string): unknown;
      code(status: number): { send(): unknown };
    },
  ) => {
    reply.header('Vary', 'Origin');
    if (req.headers.origin === origin) {
      reply.header('Access-Control-Allow-Origin', origin);
      if (credentials) reply.header('Access-Control-Allow-Credentials', 'true');
      reply.header('Access-Control-Allow-Headers', ['Content-Type', ...POSTHOG_HEADERS].join(', '));
    }
    if (req.method === 'OPTIONS') return reply.code(204).send();
  };
}

export function fastifyBridge(adapter: FastifyAdapter): BrowserBridge {
  return {
    name: 'Fastify',
    async api({ kit, cors: corsSetup, readPostHogCookie }) {
      let listener: RequestListener | undefined;
      // serverFactory hands over Fastify's own Node listener; the harness serves it.
      const app = Fastify({
        serverFactory: (handler) => {
          listener = handler;
          return createServer(handler);
        },
      });
      if (corsSetup) app.addHook('onRequest', cors(corsSetup));
      await app.register(adapter.posthog, { kit, readPostHogCookie });
      app.get('/api/hit', async (req) => {
        const query = new URLSearchParams(req.url.split('?')[1] ?? '');
        (req as unknown as { posthog: { capture(e: string, o: unknown): void } }).posthog.capture(
          'api hit',
          { properties: hitProperties(query) },
        );
        return { ok: true };
      });
      await app.ready();
      return listener!;
    },
  };
}
