// The app: the plugin first (it applies to every route), an auth hook, the routes.
import { capture, type PostHogKit, posthog } from '@posthog-kit/fastify';
import Fastify, { type FastifyInstance } from 'fastify';

declare module 'fastify' {
  interface FastifyRequest {
    /** Where @fastify/jwt and @fastify/passport put the user; the plugin reads it from there. */
    user?: { id: string; email: string };
  }
}

const signupSchema = {
  body: {
    type: 'object',
    properties: { plan: { type: 'string', enum: ['free', 'pro'] } },
    additionalProperties: false,
  },
} as const;

/** `kit` for tests; without one, the default kit (POSTHOG_* from the environment). */
export async function createApp(kit?: PostHogKit): Promise<FastifyInstance> {
  const app = Fastify();
  await app.register(posthog, { kit, captureViews: true });

  // Stands in for your auth plugin: a user from a header.
  app.addHook('onRequest', async (request) => {
    const userId = request.headers['x-user-id'];
    if (typeof userId === 'string') request.user = { id: userId, email: `${userId}@example.com` };
  });

  // A body that fails the schema is a 400: answered by Fastify, not captured as an exception.
  app.post<{ Body: { plan?: string } }>(
    '/signup',
    { schema: signupSchema },
    async (request, reply) => {
      capture('signed_up', { properties: { plan: request.body?.plan ?? 'free' } });
      return reply.code(201).send({ welcome: true });
    },
  );

  app.get('/dashboard', async (request) => {
    const v2 = await request.posthog.featureEnabled('new-dashboard');
    return { dashboard: v2 ? 'v2' : 'v1' };
  });

  app.get('/reports/:id', async () => {
    throw new Error('report generator crashed');
  });

  return app;
}
