import { getKit, kitSettingKeys, middlewareKit } from '../default.ts';
import { PostHogKitError } from '../errors.ts';
import { defaultShouldCaptureError, statusOfError } from '../exceptions.ts';
import { kitParts, type PostHogKit } from '../kit.ts';
import { captureExceptionIn, captureIn } from '../operations.ts';
import type { PostHogKitOptions, RequestSettingKey, ResolvedSettings } from '../settings.ts';
import type { Properties, RequestHooks, RequestInfo } from '../types.ts';
import { createHandle, type PostHogHandle, scopeOfHandle } from './handle.ts';
import { callHook, RequestScope, type Resolved } from './scope.ts';

/** Per-middleware settings; each falls back to the kit's. */
export type RequestOptions<TRaw = unknown> = RequestHooks<TRaw> & {
  [K in RequestSettingKey]?: ResolvedSettings[K] | undefined;
};

/**
 * What every adapter's `posthog(options)` takes: a kit, or settings for the default
 * kit, plus per-middleware request options.
 */
export type MiddlewareOptions<TRaw = unknown> = Omit<PostHogKitOptions, keyof RequestHooks> &
  RequestOptions<TRaw> & {
    /**
     * The kit to use.
     * @default the default kit (`configure()` / the environment)
     */
    kit?: PostHogKit | undefined;
  };

/** One request as the tracker follows it; the adapter only passes it back. */
export interface TrackedRequest {
  /** The request's handle, for the framework's slot (`req.posthog`, ...). */
  readonly posthog: PostHogHandle;
  /** False when `requestFilter` skipped the request: every call on it is a no-op. */
  readonly tracked: boolean;
}

/** Where an adapter's response goes out: Node's `ServerResponse` has this shape. */
export interface SentResponse {
  readonly statusCode: number;
  once(event: 'finish' | 'close', listener: () => void): unknown;
}

/**
 * How an async handler chain ended, for `runAsync`; given the request's `raw`, so an adapter
 * makes one in its factory, not one per request.
 */
export interface Outcome<R, TRaw = unknown> {
  /** The status the framework answers with. */
  status(value: R, raw: TRaw): number;
  /** An error the framework caught and answered (Hono's `c.error`, h3's returned Error). */
  error?(value: R, raw: TRaw): unknown;
  /** A thrown value that is control flow, not an error (h3's "already handled"). */
  passThrough?(thrown: unknown): boolean;
}

// Request errors are unhandled from the app's point of view, as posthog-node's own middleware says.
const MIDDLEWARE = { type: 'middleware', handled: false };
const INERT = createHandle(undefined, undefined);
const asScope = <TRaw>(request: TrackedRequest) => request as unknown as RequestScope<TRaw>;
/** The route the request's framework matched, by the request model's `route()`. */
const routeOf = (request: TrackedRequest) => asScope(request).info?.route?.();

/**
 * The framework-neutral half of every adapter: turns a `RequestInfo` into the request's
 * context, runs the handler in it, applies the error policy and view capture. Built
 * once per middleware; the adapter only translates.
 */
export class RequestTracker<TRaw = unknown> {
  readonly #options: RequestOptions<TRaw>;
  readonly #fixedKit: PostHogKit | undefined;
  #resolved: Resolved<TRaw> | undefined;

  /** `who` names the factory in errors (`posthog()`, `posthogErrorHandler()`). */
  constructor(options: MiddlewareOptions<TRaw> = {}, who = 'posthog()') {
    const { kit, ...rest } = options;
    if (kit) {
      const settings = kitSettingKeys(rest as PostHogKitOptions);
      if (settings.length > 0) {
        throw new PostHogKitError(
          `${who}: ${settings.join(', ')}: set ${settings.length > 1 ? 'these' : 'this'} on createPostHogKit(), not on the middleware, when \`kit\` is given`,
          'settings',
        );
      }
    }
    this.#fixedKit = kit ?? middlewareKit(rest as PostHogKitOptions, who);
    this.#options = rest as RequestOptions<TRaw>;
    // Now, not at the first request: a bad environment fails at setup, and the debugger
    // for code variables is attached before the first exception.
    this.#resolve();
  }

  /** The kit this middleware reports to. */
  get kit(): PostHogKit {
    return this.#resolve().kit;
  }

  #resolve(): Resolved<TRaw> {
    const kit = this.#fixedKit ?? getKit();
    if (this.#resolved?.kit === kit) return this.#resolved;
    const o = this.#options;
    const s = kit.settings;
    const hooks = kit.hooks as RequestHooks<TRaw>;
    this.#resolved = {
      kit,
      parts: kitParts(kit),
      captureExceptions: o.captureExceptions ?? s.captureExceptions,
      captureViews: o.captureViews ?? s.captureViews,
      viewEventName: o.viewEventName ?? s.viewEventName,
      readPostHogCookie: o.readPostHogCookie ?? s.readPostHogCookie,
      preferAuthenticatedUser: o.preferAuthenticatedUser ?? s.preferAuthenticatedUser,
      extraTags: o.extraTags ?? hooks.extraTags,
      requestFilter: o.requestFilter ?? hooks.requestFilter,
      tagMap: o.tagMap ?? hooks.tagMap,
      resolveUser: o.resolveUser ?? hooks.resolveUser,
      shouldCaptureError: o.shouldCaptureError ?? hooks.shouldCaptureError,
    };
    return this.#resolved;
  }

  /** Starts a request. One that `requestFilter` skips still runs, inside a no-op context. */
  start(info: RequestInfo<TRaw>): TrackedRequest {
    const r = this.#resolve();
    const parent = r.kit.context.current();
    if (r.requestFilter) {
      const keep = callHook(r, 'requestFilter', () => r.requestFilter?.(info), true);
      if (keep === false) return new RequestScope<TRaw>(undefined, undefined, parent, INERT);
    }
    return new RequestScope(r, info, parent);
  }

  /**
   * The request behind a handle `posthog()` set (Express's error handler finds it on
   * `req.posthog`), else undefined.
   */
  requestOf(handle: unknown): TrackedRequest | undefined {
    const scope = scopeOfHandle(handle);
    if (scope instanceof RequestScope) return scope;
    // A skipped request's handle is the shared no-op one.
    return handle === INERT
      ? new RequestScope<TRaw>(undefined, undefined, undefined, INERT)
      : undefined;
  }

  /** Runs `fn` inside the request's context. */
  run<R>(request: TrackedRequest, fn: () => R): R {
    return this.#resolve().kit.context.run(asScope<TRaw>(request), fn);
  }

  /**
   * Runs an async handler chain (Hono, h3): what it throws is captured (per the policy)
   * and re-thrown unchanged; the error the framework answered is captured; the request
   * ends with the status the framework answers.
   */
  async runAsync<R>(request: TrackedRequest, next: () => Promise<R>, outcome: Outcome<R, TRaw>) {
    const info = asScope<TRaw>(request).info;
    // A request requestFilter skipped: nothing to capture, nothing to end.
    if (!info) return this.run(request, next);
    let value: R;
    try {
      value = await this.run(request, next);
    } catch (thrown) {
      if (!outcome.passThrough?.(thrown)) {
        this.captureError(request, thrown);
        this.end(request, statusOfError(thrown) ?? 500, routeOf(request));
      }
      throw thrown;
    }
    const status = outcome.status(value, info.raw);
    const answered = outcome.error?.(value, info.raw);
    if (answered) this.captureError(request, answered, statusOfError(answered) ?? status);
    this.end(request, status, routeOf(request));
    return value;
  }

  /**
   * Reports a request error: captured once, per the policy, with the status. The
   * adapter re-throws or passes it on unchanged.
   */
  captureError(request: TrackedRequest, error: unknown, status?: number): void {
    const scope = asScope<TRaw>(request);
    const r = scope.resolved;
    const info = scope.info;
    if (!r?.captureExceptions || !info) return;
    const code = status ?? statusOfError(error);
    const policy = r.shouldCaptureError;
    const capture = policy
      ? callHook(
          r,
          'shouldCaptureError',
          () => policy(error, code, info),
          defaultShouldCaptureError(error, code),
        )
      : defaultShouldCaptureError(error, code);
    if (!capture) return;
    const properties = { $response_status_code: code ?? 500 };
    captureExceptionIn(r.parts, scope, error, { properties }, MIDDLEWARE);
  }

  /** Whether `end()` has work for this request (view capture, or a waitUntil flush). */
  needsEnd(request: TrackedRequest): boolean {
    const scope = asScope<TRaw>(request);
    const r = scope.resolved;
    return r !== undefined && (r.captureViews || scope.info?.waitUntil !== undefined);
  }

  /** Ends a request: view capture (opt-in) and, on serverless, the flush handed to waitUntil. */
  end(request: TrackedRequest, status: number | undefined, route?: string): void {
    const scope = asScope<TRaw>(request);
    const r = scope.resolved;
    const info = scope.info;
    if (!r || !info) return;
    if (r.captureViews) {
      const properties: Properties = { $response_status_code: status };
      if (route !== undefined) properties.$request_route = route;
      captureIn(r.parts, scope, r.viewEventName, { properties });
    }
    const waitUntil = info.waitUntil;
    const client = r.parts.client;
    if (waitUntil && client) {
      waitUntil(client.flush().catch((error: unknown) => r.kit.errors.background('flush', error)));
    }
  }

  /** Node's request model (Express, Koa, Fastify): ends the request once, when the response is sent or the connection closes. */
  endWhenSent(request: TrackedRequest, res: SentResponse) {
    if (!this.needsEnd(request)) return;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      this.end(request, res.statusCode, routeOf(request));
    };
    res.once('finish', end);
    res.once('close', end);
  }
}
