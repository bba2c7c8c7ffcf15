import {
  type MiddlewareOptions,
  type RequestInfo,
  type RequestScope,
  RequestTracker,
  statusOfError,
} from '@posthog-kit/core';
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';

declare global {
  namespace Express {
    interface Request {
      /** This request's PostHog handle: the sugar API bound to the request (posthog-kit). */
      posthog: RequestScope<Request>;
    }
  }
}

/** Options of `posthog()`: a kit or settings for the default kit, plus request options. */
export type PostHogExpressOptions = MiddlewareOptions<Request>;

/** An Express request as core sees it; each field is read when core needs it. */
class ExpressRequest implements RequestInfo<Request> {
  readonly raw: Request;

  constructor(raw: Request) {
    this.raw = raw;
  }

  get method(): string {
    return this.raw.method;
  }

  get url(): string {
    const req = this.raw;
    return `${req.protocol}://${req.get('host') ?? 'localhost'}${req.originalUrl}`;
  }

  get path(): string {
    const url = this.raw.originalUrl;
    const query = url.indexOf('?');
    return query < 0 ? url : url.slice(0, query);
  }

  // req.ip honours `trust proxy`.
  get ip(): string | undefined {
    return this.raw.ip;
  }

  header(name: string): string | undefined {
    const value = this.raw.headers[name];
    return Array.isArray(value) ? value[0] : value;
  }

  // Passport's convention.
  user(): unknown {
    return (this.raw as { user?: unknown }).user;
  }
}

function matchedRoute(req: Request): string | undefined {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? `${req.baseUrl}${path}` : undefined;
}

/** The request's status as Express's final handler would answer it. */
function errorStatus(error: unknown, res: Response): number | undefined {
  return statusOfError(error) ?? (res.statusCode >= 400 ? res.statusCode : undefined);
}

/**
 * PostHog for every request: `app.use(posthog())` before the routes. Sets
 * `req.posthog` and runs the rest of the chain inside the request's context.
 */
export function posthog(options?: PostHogExpressOptions): RequestHandler {
  const tracker = new RequestTracker<Request>(options);
  return function posthogMiddleware(req, res, next) {
    const scope = tracker.start(new ExpressRequest(req));
    req.posthog = scope ?? tracker.inert;
    if (!scope) return next();
    if (tracker.needsEnd(scope)) {
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        tracker.end(scope, res.statusCode, matchedRoute(req));
      };
      res.once('finish', end);
      res.once('close', end);
    }
    tracker.run(scope, next);
  };
}

/**
 * Captures errors of the request (per the policy, once each) and passes them on
 * unchanged: `app.use(posthogErrorHandler())` after the routes. `options` apply to
 * requests that did not go through `posthog()`.
 */
export function posthogErrorHandler(options?: PostHogExpressOptions): ErrorRequestHandler {
  const tracker = new RequestTracker<Request>(options);
  return function posthogErrorMiddleware(error, req, res, next) {
    // A request filtered out by posthog() has the inert slot (no info): nothing to capture.
    const slot = req.posthog as RequestScope<Request> | undefined;
    const scope = slot ? (slot.info ? slot : undefined) : tracker.start(new ExpressRequest(req));
    tracker.captureError(scope, error, errorStatus(error, res));
    next(error);
  };
}
