// The Hono 4 adapter: translate the request (FetchRequestInfo), run the chain inside its
// context and report errors and the status (RequestTracker.runAsync). The rest is core's.
import {
  FetchRequestInfo,
  type MiddlewareOptions,
  type Outcome,
  type PostHogHandle,
  PostHogKitError,
  RequestTracker,
} from '@posthog-kit/core';
import type { Context, MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';

export * from '@posthog-kit/core';

/** The variables `posthog()` sets: `c.var.posthog`, this request's PostHog handle. */
export type PostHogVariables = { posthog: PostHogHandle };

/** Hono's Env for apps using `posthog()`: `new Hono<PostHogEnv>()`, or intersect it with yours. */
export type PostHogEnv = { Variables: PostHogVariables };

type ConnInfo = (c: Context) => { remote: { address?: string | undefined } };

/** Options of `posthog()`: a kit or settings for the default kit, plus request options. */
export type PostHogHonoOptions = MiddlewareOptions<Context> & {
  /**
   * Your runtime's `getConnInfo` (`hono/bun`, `hono/deno`, `@hono/node-server/conninfo`, ...)
   * for the `$ip` tag: Hono has no portable client address.
   * @default none: no `$ip`
   */
  getConnInfo?: ConnInfo | undefined;
};

class HonoRequest extends FetchRequestInfo<Context> {
  readonly #connInfo: ConnInfo | undefined;
  /** The middleware's own route index: a later one is the route that answered. */
  readonly #ownIndex: number;
  constructor(c: Context, connInfo: ConnInfo | undefined) {
    super(c, c.req.raw);
    this.#connInfo = connInfo;
    this.#ownIndex = c.req.routeIndex;
  }
  route() {
    return this.raw.req.routeIndex === this.#ownIndex ? undefined : routePath(this.raw);
  }
  override get path() {
    return this.raw.req.path;
  }
  override get ip() {
    try {
      return this.#connInfo?.(this.raw).remote.address || undefined;
    } catch {
      return undefined; // A getConnInfo for another runtime than this one.
    }
  }
  // The slot auth middleware use: c.set('user', ...).
  user(): unknown {
    return this.raw.get('user');
  }
  // Workers (app.fetch with an execution context): the flush outlives the response. Node's,
  // Bun's and Deno's servers pass these envs and never one (asking would throw per request).
  get waitUntil() {
    const env = this.raw.env as object | undefined;
    if (env && ('incoming' in env || 'requestIP' in env || 'remoteAddr' in env)) return undefined;
    try {
      const ctx = this.raw.executionCtx;
      return typeof ctx?.waitUntil === 'function'
        ? (p: Promise<unknown>) => ctx.waitUntil(p)
        : undefined;
    } catch {
      return undefined;
    }
  }
}

/** What Hono answered: the response's status; the error its compose caught into `c.error`. */
const OUTCOME: Outcome<void, Context> = {
  status: (_, c) => c.res.status,
  error: (_, c) => c.error,
};

/**
 * PostHog for every request: `app.use(posthog())` before the routes. Sets
 * `c.var.posthog` and runs the rest of the chain inside the request's context;
 * errors (which Hono's compose catches into `c.error`) are captured per the policy.
 */
export function posthog(options: PostHogHonoOptions = {}): MiddlewareHandler<PostHogEnv> {
  const { getConnInfo, ...rest } = options;
  const tracker = new RequestTracker<Context>(rest);
  return async function posthogMiddleware(c, next) {
    const tracked = tracker.start(new HonoRequest(c, getConnInfo));
    c.set('posthog', tracked.posthog);
    await tracker.runAsync(tracked, next, OUTCOME);
  };
}

/** This request's PostHog handle, for apps that do not declare `PostHogEnv`. */
export function getPostHog(c: Context): PostHogHandle {
  const slot = c.get('posthog') as PostHogHandle | undefined;
  if (slot) return slot;
  throw new PostHogKitError(
    'getPostHog(c): no PostHog handle on this request; add app.use(posthog()) before its routes',
    'middleware',
  );
}
