// The Koa 3 adapter: translate the request (NodeRequestInfo), run the chain inside its
// context (RequestTracker), report errors and the status. Everything else is core's.
import { STATUS_CODES } from 'node:http';
import {
  type MiddlewareOptions,
  NodeRequestInfo,
  type PostHogHandle,
  RequestTracker,
} from '@posthog-kit/core';
import type { Context, Middleware } from 'koa';

export * from '@posthog-kit/core';

/** The state `posthog()` adds, for apps with their own state type: `new Koa<MyState & PostHogState>()`. */
export interface PostHogState {
  /** This request's PostHog handle: the API bound to the request. */
  posthog: PostHogHandle;
}

declare module 'koa' {
  /** `ctx.state.posthog`, typed in every app that uses Koa's default state. */
  interface DefaultState extends PostHogState {}
}

/** Options of `posthog()`: a kit or settings for the default kit, plus request options. */
export type PostHogKoaOptions = MiddlewareOptions<Context>;

class KoaRequest extends NodeRequestInfo<Context> {
  // originalUrl, not ctx.path: mounted apps and rewrites change ctx.path later.
  protected get target() {
    return this.raw.originalUrl;
  }
  // ctx.protocol, ctx.host and ctx.ip honour app.proxy (X-Forwarded-*).
  protected get protocol() {
    return this.raw.protocol;
  }
  protected get host() {
    return this.raw.host;
  }
  get ip() {
    return this.raw.ip || undefined;
  }
  // koa-passport's and koa-jwt's convention.
  user(): unknown {
    return (this.raw.state as { user?: unknown }).user;
  }
  route() {
    return matchedRoute(this.raw);
  }
}

/** The route @koa/router matched, prefixes of nested routers included. */
function matchedRoute(ctx: Context): string | undefined {
  const route: unknown = ctx._matchedRoute;
  return typeof route === 'string' ? route : undefined;
}

/** The status Koa's `ctx.onerror` answers: the error's `status` or `statusCode` when valid, else 500. */
function errorStatus(error: unknown): number {
  const isError =
    error instanceof Error || Object.prototype.toString.call(error) === '[object Error]';
  const e = isError ? (error as { status?: unknown; statusCode?: unknown }) : {};
  const status = e.status || e.statusCode;
  return typeof status === 'number' && STATUS_CODES[status] ? status : 500;
}

/**
 * PostHog for every request: `app.use(posthog())` first. Sets `ctx.state.posthog`, runs
 * the rest of the chain inside the request's context, captures what it throws and
 * re-throws it unchanged, so Koa's `ctx.onerror` and `app.on('error')` work as before.
 */
export function posthog(options?: PostHogKoaOptions): Middleware<PostHogState> {
  const tracker = new RequestTracker<Context>(options);
  // Not an async function: one promise less per request than `try { await next() }`.
  return function posthogMiddleware(ctx, next) {
    const tracked = tracker.start(new KoaRequest(ctx as Context, ctx.req));
    ctx.state.posthog = tracked.posthog;
    tracker.endWhenSent(tracked, ctx.res);
    return tracker.run(tracked, next).catch((error: unknown) => {
      tracker.captureError(tracked, error, errorStatus(error));
      throw error;
    });
  };
}
