// The Fastify 5 adapter: a plugin whose hooks translate the request (NodeRequestInfo), run
// each stage of Fastify's lifecycle inside its context (RequestTracker), and report errors
// and the status. Everything else is core's; an adapter author needs only RequestTracker
// and RequestInfo from @posthog-kit/core.
import {
  flushWithin,
  type MiddlewareOptions,
  NodeRequestInfo,
  type PostHogHandle,
  PostHogKitError,
  RequestTracker,
} from '@posthog-kit/core';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, RegisterOptions } from 'fastify';
import fp from 'fastify-plugin';

export * from '@posthog-kit/core';

declare module 'fastify' {
  interface FastifyRequest {
    /** This request's PostHog handle: the API bound to the request (posthog-kit). */
    posthog: PostHogHandle;
  }
}

/** Options of the `posthog` plugin: a kit or settings for the default kit, plus request options. */
export type PostHogFastifyOptions = MiddlewareOptions<FastifyRequest> & {
  /**
   * How long `app.close()` waits for the kit to send what it queued (0: it does not wait).
   * @default 5000
   */
  closeTimeoutMs?: number | undefined;
};

class FastifyRequestInfo extends NodeRequestInfo<FastifyRequest> {
  // As received: rewriteUrl changes request.url, not originalUrl.
  protected get target() {
    return this.raw.originalUrl;
  }
  // request.protocol, request.host and request.ip honour `trustProxy`.
  protected get protocol() {
    return this.raw.protocol ?? 'http';
  }
  protected get host() {
    return this.raw.host;
  }
  get ip() {
    return this.raw.ip;
  }
  // @fastify/passport's and @fastify/jwt's convention.
  user(): unknown {
    return (this.raw as { user?: unknown }).user;
  }
  route() {
    return this.raw.routeOptions.url;
  }
}

/** The status Fastify's default error handler answers: the reply's own if set, else the error's 4xx/5xx, else 500. */
function errorStatus(reply: FastifyReply, error: unknown): number {
  if (reply.statusCode !== 200) return reply.statusCode;
  const e = (error ?? {}) as { statusCode?: unknown; status?: unknown };
  for (const code of [e.statusCode, e.status])
    if (typeof code === 'number' && code >= 400 && code <= 599) return code;
  return 500;
}

const info = (request: FastifyRequest) => new FastifyRequestInfo(request, request.raw);

const plugin: FastifyPluginAsync<PostHogFastifyOptions> = async (app, options) => {
  const { closeTimeoutMs = 5000, ...rest } = options;
  // register()'s own options, not settings.
  const { prefix, logLevel, logSerializers, ...settings } = rest as typeof rest & RegisterOptions;
  const tracker = new RequestTracker<FastifyRequest>(settings, 'posthog plugin');
  // Registered twice for the same routes, this fails at boot (Fastify decorates once).
  app.decorateRequest('posthog', null as unknown as PostHogHandle);

  app.addHook('onRequest', (request, reply, next) => {
    const tracked = tracker.start(info(request));
    request.posthog = tracked.posthog;
    tracker.endWhenSent(tracked, reply.raw);
    tracker.run(tracked, next);
  });
  // Entered again after body parsing: a plugin that re-enters a context captured before
  // ours (@fastify/request-context registered first) would otherwise lose it from here on.
  app.addHook('preValidation', (request, _reply, next) => {
    const tracked = tracker.requestOf(request.posthog);
    if (tracked) tracker.run(tracked, next);
    else next();
  });
  // Before the error handler: the app's own setErrorHandler answers, unchanged.
  app.addHook('onError', (request, reply, error, next) => {
    const tracked = tracker.requestOf(request.posthog) ?? tracker.start(info(request));
    tracker.captureError(tracked, error, errorStatus(reply, error));
    next();
  });
  app.addHook('onClose', async () => {
    if (closeTimeoutMs > 0) await flushWithin(tracker.kit, closeTimeoutMs);
  });
};

/**
 * PostHog for every request: `app.register(posthog, options?)`. Applies to the scope it is
 * registered in and its children (fastify-plugin); sets `request.posthog` and runs every
 * hook and the handler inside the request's context; `app.close()` flushes the kit.
 */
export const posthog = fp(plugin, { fastify: '5.x', name: '@posthog-kit/fastify' });

/** This request's PostHog handle; a clear error where the plugin does not apply. */
export function getPostHog(request: FastifyRequest): PostHogHandle {
  const handle = (request as { posthog?: PostHogHandle | null }).posthog;
  if (handle) return handle;
  throw new PostHogKitError(
    'getPostHog(request): no PostHog handle on this request; register the plugin in this scope or a parent one: app.register(posthog)',
    'middleware',
  );
}
