// The request half: the HTTP adapter's request hook (Express's first middleware, Fastify's
// first onRequest hook) starts the request's context before any middleware, guard, pipe,
// handler or filter runs; Nest's exception dispatch reports errors before any exception
// filter can answer or swallow them.
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type ArgumentsHost,
  createParamDecorator,
  type ExecutionContext,
  HttpException,
} from '@nestjs/common';
// Nest's dispatch of a request's error to the filters; not in @nestjs/core's index.
import { ExceptionsHandler } from '@nestjs/core/exceptions/exceptions-handler.js';
import {
  NodeRequestInfo,
  type PostHogHandle,
  PostHogKitError,
  type RequestTracker,
  statusOfError,
  type TrackedRequest,
} from '@posthog-kit/core';

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
type WithSlot = {
  [SLOT]?: { readonly tracked: TrackedRequest; readonly tracker: RequestTracker<IncomingMessage> };
};

/** Node's request behind a platform's: Fastify's `request.raw`, Express's `req` itself. */
const nodeRequest = (req: unknown) =>
  ((req as PlatformRequest).raw ?? req) as IncomingMessage & WithSlot;

function start(tracker: RequestTracker<IncomingMessage>, req: unknown, res: unknown) {
  const raw = nodeRequest(req);
  const info = new NestRequest(raw, req as PlatformRequest);
  const tracked = tracker.start(info);
  raw[SLOT] = { tracked, tracker };
  const response = ((res as { raw?: unknown }).raw ?? res) as ServerResponse;
  tracker.endWhenSent(tracked, response);
  return tracked;
}

/** A hook for `httpAdapter.setOnRequestHook()`: `done` continues the request inside its context. */
export type RequestHook = (req: unknown, res: unknown, done: (error?: Error) => void) => unknown;

/** The request hook `PostHogModule` sets, in front of one the app had set. */
export function requestHook(tracker: RequestTracker<IncomingMessage>, then?: RequestHook) {
  return function posthogRequestHook(this: unknown, req: unknown, res: unknown, done: () => void) {
    // Already tracked: a second PostHogModule in the app.
    const tracked = nodeRequest(req)[SLOT]?.tracked ?? start(tracker, req, res);
    const next = then ? () => then.call(this, req, res, done) : done;
    return tracker.run(tracked, next);
  };
}

// HttpException's own status; other errors by core's rule (status, statusCode, ...).
const statusOf = (error: unknown) =>
  error instanceof HttpException ? error.getStatus() : statusOfError(error);

/** What `ExceptionsHandler.prototype.next` is: Nest's dispatch of an error to the filters. */
type Dispatch = (this: unknown, exception: unknown, host: ArgumentsHost) => unknown;
const WRAPPED = Symbol.for('posthog-kit.nestjs.exceptions');

/**
 * Reports every error an HTTP request of a tracked app raises, once, as Nest hands it to
 * its exception filters: from middleware, guards, interceptors, pipes and handlers alike,
 * before any filter (global, controller, method or catch-all) can answer or swallow it.
 * Nest has one place for that, `ExceptionsHandler.next`, and no public hook on it; it is
 * wrapped once per process (by whichever copy of this package comes first, ESM or CJS),
 * and a request no `PostHogModule` tracks costs one property read. The error, the filters
 * and the response are unchanged. An interceptor would see less (not middleware or guards)
 * and cost every request of the app RxJS observables and an AsyncResource (about 10 µs).
 */
export function reportErrors(): void {
  const proto = ExceptionsHandler.prototype as unknown as { next: Dispatch; [WRAPPED]?: true };
  if (proto[WRAPPED]) return;
  const dispatch = proto.next;
  proto.next = function next(this: unknown, exception: unknown, host: ArgumentsHost) {
    const req: unknown = host.getType() === 'http' ? host.getArgByIndex(0) : undefined;
    if (typeof req === 'object' && req !== null) {
      const slot = nodeRequest(req)[SLOT];
      slot?.tracker.captureError(slot.tracked, exception, statusOf(exception));
    }
    return dispatch.call(this, exception, host);
  };
  proto[WRAPPED] = true;
}

/**
 * The request's PostHog handle from Express's `req`, Fastify's `request` or Node's request:
 * in guards, filters and middleware. Throws when `PostHogModule` is not in the app.
 */
export function getPostHog(request: object): PostHogHandle {
  const slot = nodeRequest(request)[SLOT];
  if (slot) return slot.tracked.posthog;
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
