import {
  type MiddlewareOptions,
  PostHogKitError,
  type RequestInfo,
  type RequestScope,
  RequestTracker,
  statusOfError,
} from '@posthog-kit/core';
import type { Context, MiddlewareHandler } from 'hono';

/** The variables `posthog()` sets: `c.var.posthog`, this request's PostHog handle. */
export type PostHogVariables = { posthog: RequestScope<Context> };

/** Hono's Env for apps using `posthog()`: `new Hono<PostHogEnv>()`, or intersect it with yours. */
export type PostHogEnv = { Variables: PostHogVariables };

/** Options of `posthog()`: a kit or settings for the default kit, plus request options. */
export type PostHogHonoOptions = MiddlewareOptions<Context> & {
  /**
   * Your runtime's `getConnInfo` (`hono/bun`, `hono/deno`, `@hono/node-server/conninfo`, ...)
   * for the `$ip` tag: Hono has no portable client address.
   * @default none: no `$ip`
   */
  getConnInfo?: ((c: Context) => { remote: { address?: string | undefined } }) | undefined;
};

/** A Hono request as core sees it; each field is read when core needs it. */
class HonoRequest implements RequestInfo<Context> {
  readonly raw: Context;
  private readonly connInfo: PostHogHonoOptions['getConnInfo'];

  constructor(raw: Context, connInfo: PostHogHonoOptions['getConnInfo']) {
    this.raw = raw;
    this.connInfo = connInfo;
  }

  get method(): string {
    return this.raw.req.method;
  }

  get url(): string {
    return this.raw.req.url;
  }

  get path(): string {
    return this.raw.req.path;
  }

  get ip(): string | undefined {
    try {
      return this.connInfo?.(this.raw).remote.address || undefined;
    } catch {
      return undefined; // A getConnInfo for another runtime than this one.
    }
  }

  header(name: string): string | undefined {
    return this.raw.req.raw.headers.get(name) ?? undefined;
  }

  // The slot auth middleware use: c.set('user', ...).
  user(): unknown {
    return this.raw.get('user');
  }

  // Workers (and anything calling app.fetch with an execution context): the flush outlives the response.
  get waitUntil(): ((promise: Promise<unknown>) => void) | undefined {
    if (fromServer(this.raw.env)) return undefined;
    try {
      const ctx = this.raw.executionCtx;
      return typeof ctx?.waitUntil === 'function' ? (p) => ctx.waitUntil(p) : undefined;
    } catch {
      return undefined;
    }
  }
}

// Node's (@hono/node-server), Bun's and Deno's servers pass these envs and never an execution
// context; asking Hono for one anyway costs a thrown Error per request.
function fromServer(env: unknown): boolean {
  if (typeof env !== 'object' || env === null) return false;
  return 'incoming' in env || 'requestIP' in env || 'remoteAddr' in env;
}

/**
 * PostHog for every request: `app.use(posthog())` before the routes. Sets
 * `c.var.posthog` and runs the rest of the chain inside the request's context;
 * errors (which Hono's compose catches into `c.error`) are captured per the policy.
 */
export function posthog(options: PostHogHonoOptions = {}): MiddlewareHandler<PostHogEnv> {
  const { getConnInfo, ...rest } = options;
  const tracker = new RequestTracker<Context>(rest);
  return async function posthogMiddleware(c, next) {
    const scope = tracker.start(new HonoRequest(c, getConnInfo));
    c.set('posthog', scope ?? tracker.inert);
    if (!scope) return next();
    // The pattern of a later route that answered (hono/route's routePath(c) needs Hono >= 4.8).
    const ownIndex = c.req.routeIndex;
    const route = () => (c.req.routeIndex === ownIndex ? undefined : c.req.routePath);
    try {
      await tracker.run(scope, next);
    } catch (error) {
      // Compose only catches Error instances: a thrown string reaches the server as it is.
      tracker.captureError(scope, error);
      tracker.end(scope, statusOfError(error) ?? 500, route());
      throw error;
    }
    // An HTTPException's status is its own; otherwise what app.onError answered.
    if (c.error) tracker.captureError(scope, c.error, statusOfError(c.error) ?? c.res.status);
    tracker.end(scope, c.res.status, route());
  };
}

/** This request's PostHog handle, for apps that do not declare `PostHogEnv`. */
export function getPostHog(c: Context): RequestScope<Context> {
  const slot = c.get('posthog') as RequestScope<Context> | undefined;
  if (slot) return slot;
  throw new PostHogKitError(
    'getPostHog(c): no PostHog handle on this request; add app.use(posthog()) before its routes',
    'middleware',
  );
}
