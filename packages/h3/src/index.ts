import {
  type MiddlewareOptions,
  PostHogKitError,
  type RequestInfo,
  type RequestScope,
  RequestTracker,
  statusOfError,
} from '@posthog-kit/core';
import { getRequestIP, type H3Event, HTTPResponse, type Middleware } from 'h3';

declare module 'h3' {
  interface H3EventContext {
    /** This request's PostHog handle: the sugar API bound to the request (posthog-kit). */
    posthog?: RequestScope<H3Event>;
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

/** An h3 event as core sees it; each field is read when core needs it. */
class H3Request implements RequestInfo<H3Event> {
  readonly raw: H3Event;
  private readonly xForwardedFor: boolean;

  constructor(raw: H3Event, xForwardedFor: boolean) {
    this.raw = raw;
    this.xForwardedFor = xForwardedFor;
  }

  get method(): string {
    return this.raw.req.method;
  }

  get url(): string {
    return this.raw.req.url;
  }

  // Not event.url: a mounted app's middleware sees that without the mount base.
  get path(): string {
    return new URL(this.raw.req.url).pathname;
  }

  get ip(): string | undefined {
    return getRequestIP(this.raw, { xForwardedFor: this.xForwardedFor });
  }

  header(name: string): string | undefined {
    return this.raw.req.headers.get(name) ?? undefined;
  }

  // The slot auth middleware use: event.context.user.
  user(): unknown {
    return this.raw.context.user;
  }

  // Serverless (Workers, Vercel...): the flush outlives the response. Long-running servers batch.
  get waitUntil(): ((promise: Promise<unknown>) => void) | undefined {
    const event = this.raw;
    if (typeof event.req.waitUntil !== 'function') return undefined;
    const runtime = event.runtime?.name;
    return runtime && LONG_RUNNING.has(runtime) ? undefined : (p) => event.waitUntil(p);
  }
}

/** The status h3 answers a handler's value with (before the app's onError, if any). */
function statusOf(value: unknown, event: H3Event): number {
  if (value instanceof Response) return value.status;
  if (value === NOT_FOUND) return 404;
  if (value instanceof Error) return statusOfError(value) ?? 500;
  return (value instanceof HTTPResponse ? value.status : undefined) ?? event.res.status ?? 200;
}

/**
 * PostHog for every request: `app.use(posthog())`. Sets `event.context.posthog` and runs
 * the rest of the chain inside the request's context; handler errors are captured per the
 * policy and passed on unchanged. An unmatched route is no error: its 404 is never captured.
 */
export function posthog(options: PostHogH3Options = {}): Middleware {
  const { xForwardedFor = false, ...rest } = options;
  const tracker = new RequestTracker<H3Event>(rest);
  return async function posthogMiddleware(event, next) {
    const scope = tracker.start(new H3Request(event, xForwardedFor));
    event.context.posthog = scope ?? tracker.inert;
    if (!scope) return next();
    const route = () => event.context.matchedRoute?.route;
    let value: unknown;
    try {
      value = await tracker.run(scope, next);
    } catch (error) {
      if (error === HANDLED) throw error;
      tracker.captureError(scope, error);
      tracker.end(scope, statusOfError(error) ?? 500, route());
      throw error;
    }
    if (value instanceof Error) tracker.captureError(scope, value); // h3 answers a returned error too
    tracker.end(scope, statusOf(value, event), route());
    return value;
  };
}

/** This request's PostHog handle (`event.context.posthog`, set by `posthog()`). */
export function getPostHog(event: H3Event): RequestScope<H3Event> {
  const slot = event.context.posthog;
  if (slot) return slot;
  throw new PostHogKitError(
    'getPostHog(event): no PostHog handle on this request; add app.use(posthog()) to the app',
    'middleware',
  );
}
