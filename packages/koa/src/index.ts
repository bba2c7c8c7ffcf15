import { STATUS_CODES } from 'node:http';
import {
  type MiddlewareOptions,
  type RequestInfo,
  type RequestScope,
  RequestTracker,
} from '@posthog-kit/core';
import type { Context, Middleware } from 'koa';

/** The state `posthog()` adds, for apps with their own state type: `new Koa<MyState & PostHogState>()`. */
export interface PostHogState {
  /** This request's PostHog handle: the sugar API bound to the request. */
  posthog: RequestScope<Context>;
}

declare module 'koa' {
  /** `ctx.state.posthog`, typed in every app that uses Koa's default state. */
  interface DefaultState extends PostHogState {}
}

/** Options of `posthog()`: a kit or settings for the default kit, plus request options. */
export type PostHogKoaOptions = MiddlewareOptions<Context>;

/** A Koa context as core sees it; each field is read when core needs it. */
class KoaRequest implements RequestInfo<Context> {
  readonly raw: Context;

  constructor(raw: Context) {
    this.raw = raw;
  }

  get method(): string {
    return this.raw.method;
  }

  // ctx.protocol and ctx.host honour app.proxy (X-Forwarded-Proto, X-Forwarded-Host).
  get url(): string {
    const ctx = this.raw;
    return `${ctx.protocol}://${ctx.host || 'localhost'}${ctx.originalUrl}`;
  }

  // originalUrl, not ctx.path: mounted apps and rewrites change ctx.path later.
  get path(): string {
    const url = this.raw.originalUrl;
    const query = url.indexOf('?');
    return query < 0 ? url : url.slice(0, query);
  }

  // ctx.ip honours app.proxy (X-Forwarded-For, or app.proxyIpHeader).
  get ip(): string | undefined {
    return this.raw.ip || undefined;
  }

  header(name: string): string | undefined {
    const value = this.raw.req.headers[name];
    return Array.isArray(value) ? value[0] : value;
  }

  // koa-passport's and koa-jwt's convention.
  user(): unknown {
    return (this.raw.state as { user?: unknown }).user;
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
    const scope = tracker.start(new KoaRequest(ctx));
    ctx.state.posthog = scope ?? tracker.inert;
    if (!scope) return next();
    if (tracker.needsEnd(scope)) {
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        tracker.end(scope, ctx.res.statusCode, matchedRoute(ctx));
      };
      ctx.res.once('finish', end);
      ctx.res.once('close', end);
    }
    return tracker.run(scope, next).catch((error: unknown) => {
      tracker.captureError(scope, error, errorStatus(error));
      throw error;
    });
  };
}
