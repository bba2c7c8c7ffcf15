// The Express 5 adapter: translate the request (NodeRequestInfo), run the chain inside its
// context (RequestTracker), report errors and the status. Everything else is core's;
// an adapter author needs only @posthog-kit/core's RequestTracker and RequestInfo.
import {
  type MiddlewareOptions,
  NodeRequestInfo,
  type PostHogHandle,
  RequestTracker,
  statusOfError,
} from '@posthog-kit/core';
import type { ErrorRequestHandler, Request, RequestHandler } from 'express';

export * from '@posthog-kit/core';

declare global {
  namespace Express {
    interface Request {
      /** This request's PostHog handle: the API bound to the request (posthog-kit). */
      posthog: PostHogHandle;
    }
  }
}

/** Options of `posthog()`: a kit or settings for the default kit, plus request options. */
export type PostHogExpressOptions = MiddlewareOptions<Request>;

class ExpressRequest extends NodeRequestInfo<Request> {
  protected get target() {
    return this.raw.originalUrl;
  }
  protected get protocol() {
    return this.raw.protocol;
  }
  protected get host() {
    return this.raw.get('host');
  }
  // req.ip honours `trust proxy`.
  get ip() {
    return this.raw.ip;
  }
  // Passport's convention.
  user(): unknown {
    return (this.raw as { user?: unknown }).user;
  }
  route() {
    return matchedRoute(this.raw);
  }
}

const request = (req: Request) => new ExpressRequest(req, req);

function matchedRoute(req: Request): string | undefined {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? `${req.baseUrl}${path}` : undefined;
}

/**
 * PostHog for every request: `app.use(posthog())` before the routes. Sets
 * `req.posthog` and runs the rest of the chain inside the request's context.
 */
export function posthog(options?: PostHogExpressOptions): RequestHandler {
  const tracker = new RequestTracker<Request>(options, 'posthog()');
  return function posthogMiddleware(req, res, next) {
    const tracked = tracker.start(request(req));
    req.posthog = tracked.posthog;
    tracker.endWhenSent(tracked, res);
    tracker.run(tracked, next);
  };
}

/**
 * Captures errors of the request (per the policy, once each) and passes them on
 * unchanged: `app.use(posthogErrorHandler())` after the routes. `options` apply to
 * requests that did not go through `posthog()`.
 */
export function posthogErrorHandler(options?: PostHogExpressOptions): ErrorRequestHandler {
  const tracker = new RequestTracker<Request>(options, 'posthogErrorHandler()');
  return function posthogErrorMiddleware(error, req, res, next) {
    const tracked = tracker.requestOf(req.posthog) ?? tracker.start(request(req));
    // The status Express's final handler answers.
    const status = statusOfError(error) ?? (res.statusCode >= 400 ? res.statusCode : undefined);
    tracker.captureError(tracked, error, status);
    next(error);
  };
}
