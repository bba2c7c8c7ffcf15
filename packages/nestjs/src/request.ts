// The request half: the HTTP adapter's request hook (Express's first middleware, Fastify's
// first onRequest hook) starts the request's context before any middleware, guard, pipe,
// handler or filter runs; the interceptor reports errors before any exception filter can
// answer or swallow them.
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type CallHandler,
  createParamDecorator,
  type ExecutionContext,
  HttpException,
  type NestInterceptor,
} from '@nestjs/common';
import {
  NodeRequestInfo,
  type PostHogHandle,
  PostHogKitError,
  type RequestTracker,
  statusOfError,
  type TrackedRequest,
} from '@posthog-kit/core';
import { Observable, tap } from 'rxjs';

/** What the platforms' requests may carry: Express's `req`, Fastify's `request` (and its `raw`). */
interface PlatformRequest {
  raw?: unknown;
  originalUrl?: unknown;
  url?: unknown;
  ip?: unknown;
  protocol?: unknown;
  host?: unknown;
  user?: unknown;
  baseUrl?: unknown;
  route?: { path?: unknown };
  routeOptions?: { url?: unknown };
  socket?: { remoteAddress?: string; encrypted?: boolean };
}

const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);

class NestRequest extends NodeRequestInfo<IncomingMessage> {
  /** Express's `req` (Node's request itself) or Fastify's `request`. */
  platform: PlatformRequest;

  constructor(raw: IncomingMessage, platform: PlatformRequest) {
    super(raw, raw);
    this.platform = platform;
  }

  get #node(): PlatformRequest {
    return this.raw as PlatformRequest;
  }

  // originalUrl: Express's, or what @fastify/middie keeps when a middleware cuts req.url.
  protected get target() {
    return text(this.#node.originalUrl) ?? text(this.raw.url) ?? '/';
  }
  // Both frameworks' getters honour their proxy settings (`trust proxy`, `trustProxy`).
  protected get protocol() {
    return (
      text(this.platform.protocol) ??
      text(this.#node.protocol) ??
      (this.#node.socket?.encrypted ? 'https' : 'http')
    );
  }
  protected get host() {
    return text(this.platform.host) ?? this.header('host');
  }
  get ip() {
    return text(this.platform.ip) ?? text(this.#node.ip) ?? this.#node.socket?.remoteAddress;
  }
  // Passport (and Nest's AuthGuard) set `user` on the platform's request.
  user(): unknown {
    return this.platform.user ?? this.#node.user;
  }
  /** The matched route pattern: Express's `req.route`, Fastify's `routeOptions.url`. */
  route(): string | undefined {
    const path = this.platform.route?.path;
    if (typeof path === 'string') return `${text(this.platform.baseUrl) ?? ''}${path}`;
    return text(this.platform.routeOptions?.url);
  }
}

// The request's tracking, on Node's request; shared by the ESM and CJS copies of this package.
const SLOT = Symbol.for('posthog-kit.nestjs.request');
type WithSlot = { [SLOT]?: TrackedRequest };

/** Node's request behind a platform's: Fastify's `request.raw`, Express's `req` itself. */
const nodeRequest = (req: unknown) =>
  ((req as PlatformRequest).raw ?? req) as IncomingMessage & WithSlot;

function start(tracker: RequestTracker<IncomingMessage>, req: unknown, res: unknown) {
  const raw = nodeRequest(req);
  const info = new NestRequest(raw, req as PlatformRequest);
  const tracked = tracker.start(info);
  raw[SLOT] = tracked;
  const response = ((res as { raw?: unknown }).raw ?? res) as ServerResponse;
  tracker.endWhenSent(tracked, response, () => info.route());
  return tracked;
}

/** A hook for `httpAdapter.setOnRequestHook()`: `done` continues the request inside its context. */
export type RequestHook = (req: unknown, res: unknown, done: (error?: Error) => void) => unknown;

/** The request hook `PostHogModule` sets, in front of one the app had set. */
export function requestHook(tracker: RequestTracker<IncomingMessage>, then?: RequestHook) {
  return function posthogRequestHook(this: unknown, req: unknown, res: unknown, done: () => void) {
    // Already tracked: a second PostHogModule in the app.
    const tracked = nodeRequest(req)[SLOT] ?? start(tracker, req, res);
    const next = then ? () => then.call(this, req, res, done) : done;
    return tracker.run(tracked, next);
  };
}

// HttpException's own status; other errors by core's rule (status, statusCode, ...).
const statusOf = (error: unknown) =>
  error instanceof HttpException ? error.getStatus() : statusOfError(error);

/**
 * Reports what the handler (or a pipe, or an inner interceptor) throws, once, before any
 * exception filter runs: global, controller and catch-all filters alike. The error goes
 * on unchanged.
 */
export class RequestInterceptor implements NestInterceptor {
  readonly #tracker: RequestTracker<IncomingMessage>;

  constructor(tracker: RequestTracker<IncomingMessage>) {
    this.#tracker = tracker;
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const tracker = this.#tracker;
    const http = context.switchToHttp();
    const req = http.getRequest<unknown>();
    const tracked = nodeRequest(req)[SLOT] ?? start(tracker, req, http.getResponse());
    const handled = next
      .handle()
      .pipe(
        tap({ error: (error: unknown) => tracker.captureError(tracked, error, statusOf(error)) }),
      );
    if (tracker.kit.context.current()) return handled;
    // No context here (another request hook replaced ours, a custom storage lost it): enter it.
    return new Observable((subscriber) =>
      tracker.run(tracked, () => handled.subscribe(subscriber)),
    );
  }
}

/**
 * The request's PostHog handle from Express's `req`, Fastify's `request` or Node's request:
 * in guards, filters and middleware. Throws when `PostHogModule` is not in the app.
 */
export function getPostHog(request: object): PostHogHandle {
  const tracked = nodeRequest(request)[SLOT];
  if (tracked) return tracked.posthog;
  throw new PostHogKitError(
    'getPostHog(request): no PostHog handle on this request; import PostHogModule.forRoot() in the app module',
    'middleware',
  );
}

/** `@PostHog() posthog: PostHogHandle`: the request's handle as a route handler parameter. */
export const PostHog: () => ParameterDecorator = createParamDecorator(
  (_data: unknown, context: ExecutionContext) =>
    getPostHog(context.switchToHttp().getRequest<object>()),
);
