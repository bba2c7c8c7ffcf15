// The h3 v2 adapter: translate the event (FetchRequestInfo), run the chain inside its
// context and report errors and the status (RequestTracker.runAsync). The rest is core's.
import {
  FetchRequestInfo,
  type MiddlewareOptions,
  type Outcome,
  type PostHogHandle,
  PostHogKitError,
  RequestTracker,
  statusOfError,
} from '@posthog-kit/core';
import { getRequestIP, type H3Event, HTTPResponse, type Middleware } from 'h3';

export * from '@posthog-kit/core';

declare module 'h3' {
  interface H3EventContext {
    /** This request's PostHog handle: the API bound to the request (posthog-kit). */
    posthog?: PostHogHandle;
  }
}

/** Options of `posthog()`: a kit or settings for the default kit, plus request options. */
export type PostHogH3Options = MiddlewareOptions<H3Event> & {
  /**
   * Take `$ip` from the first `X-Forwarded-For` entry (h3's `getRequestIP` option): only
   * behind a proxy you control that overwrites the header.
   * @default false: the connection's address
   */
  xForwardedFor?: boolean | undefined;
};

// h3's markers: a route that matched nothing, and a response a Node handler already sent.
const NOT_FOUND = Symbol.for('h3.notFound');
const HANDLED = Symbol.for('h3.handled');
// srvx's own servers: long-running processes whose waitUntil only tracks promises for shutdown.
const LONG_RUNNING = new Set(['node', 'bun', 'deno']);

class H3Request extends FetchRequestInfo<H3Event> {
  readonly #xForwardedFor: boolean;
  constructor(event: H3Event, xForwardedFor: boolean) {
    super(event, event.req);
    this.#xForwardedFor = xForwardedFor;
  }
  route() {
    return this.raw.context.matchedRoute?.route;
  }
  override get ip() {
    return getRequestIP(this.raw, { xForwardedFor: this.#xForwardedFor });
  }
  // The slot auth middleware use: event.context.user.
  user(): unknown {
    return this.raw.context.user;
  }
  // Serverless (Workers, Vercel...): the flush outlives the response. Long-running servers batch.
  get waitUntil() {
    const event = this.raw;
    if (typeof event.req.waitUntil !== 'function') return undefined;
    const runtime = event.runtime?.name;
    return runtime && LONG_RUNNING.has(runtime)
      ? undefined
      : (p: Promise<unknown>) => event.waitUntil(p);
  }
}

/** The status h3 answers a handler's value with (before the app's onError, if any). */
function statusOf(value: unknown, event: H3Event): number {
  if (value instanceof Response) return value.status;
  if (value === NOT_FOUND) return 404;
  if (value instanceof Error) return statusOfError(value) ?? 500;
  return (value instanceof HTTPResponse ? value.status : undefined) ?? event.res.status ?? 200;
}

/** What h3 answered; a returned Error is answered too; HANDLED is control flow. */
const OUTCOME: Outcome<unknown, H3Event> = {
  status: statusOf,
  error: (value) => (value instanceof Error ? value : undefined),
  passThrough: (thrown) => thrown === HANDLED,
};

/**
 * PostHog for every request: `app.use(posthog())`. Sets `event.context.posthog` and runs
 * the rest of the chain inside the request's context; handler errors are captured per the
 * policy and passed on unchanged. An unmatched route is no error: its 404 is never captured.
 */
export function posthog(options: PostHogH3Options = {}): Middleware {
  const { xForwardedFor = false, ...rest } = options;
  const tracker = new RequestTracker<H3Event>(rest);
  return function posthogMiddleware(event, next) {
    const tracked = tracker.start(new H3Request(event, xForwardedFor));
    event.context.posthog = tracked.posthog;
    return tracker.runAsync(tracked, async () => next(), OUTCOME);
  };
}

/** This request's PostHog handle (`event.context.posthog`, set by `posthog()`). */
export function getPostHog(event: H3Event): PostHogHandle {
  const slot = event.context.posthog;
  if (slot) return slot;
  throw new PostHogKitError(
    'getPostHog(event): no PostHog handle on this request; add app.use(posthog()) to the app',
    'middleware',
  );
}
