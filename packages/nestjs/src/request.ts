// The request half: Nest's middleware starts the request's context before guards, pipes,
// handlers and filters run (on Express and on Fastify, whose middleware gets Node's request);
// the interceptor reports errors before any exception filter can answer or swallow them.
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
  /** Express's `req` (Node's request itself), or Fastify's `request` once the interceptor saw it. */
  platform: PlatformRequest;

  constructor(raw: IncomingMessage) {
    super(raw, raw);
    this.platform = raw as PlatformRequest;
  }

  get #node(): PlatformRequest {
    return this.raw as PlatformRequest;
  }

  // originalUrl: Express's, or what @fastify/middie kept before Nest's middleware cut req.url.
  protected get target() {
    return text(this.#node.originalUrl) ?? text(this.raw.url) ?? '/';
  }
  // Both frameworks' getters honour their proxy settings; middie copies Fastify's onto `raw`.
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

interface Slot {
  tracked: TrackedRequest;
  info: NestRequest;
}

// On Node's request, shared by the ESM and CJS copies of this package.
const SLOT = Symbol.for('posthog-kit.nestjs.request');
type WithSlot = { [SLOT]?: Slot };

/** Node's request behind a platform's: Fastify's `request.raw`, Express's `req` itself. */
const nodeRequest = (req: unknown) =>
  ((req as PlatformRequest).raw ?? req) as IncomingMessage & WithSlot;

function start(tracker: RequestTracker<IncomingMessage>, req: unknown, res: unknown): Slot {
  const raw = nodeRequest(req);
  const info = new NestRequest(raw);
  const slot: Slot = { tracked: tracker.start(info), info };
  raw[SLOT] = slot;
  const response = ((res as { raw?: unknown }).raw ?? res) as ServerResponse;
  tracker.endWhenSent(slot.tracked, response, () => info.route());
  return slot;
}

/** The middleware `PostHogModule` applies to every route. */
export function requestMiddleware(tracker: RequestTracker<IncomingMessage>) {
  return function posthogMiddleware(req: unknown, res: unknown, next: () => void): void {
    // Already tracked: a second PostHogModule in the app.
    const slot = nodeRequest(req)[SLOT];
    tracker.run(slot?.tracked ?? start(tracker, req, res).tracked, next);
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
    const slot = nodeRequest(req)[SLOT] ?? start(tracker, req, http.getResponse());
    slot.info.platform = req as PlatformRequest;
    const { tracked } = slot;
    const handled = next
      .handle()
      .pipe(
        tap({ error: (error: unknown) => tracker.captureError(tracked, error, statusOf(error)) }),
      );
    if (tracker.kit.context.current()) return handled;
    // No context here (the middleware did not run, or a custom storage lost it): enter it.
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
