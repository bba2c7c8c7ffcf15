import { Scope } from './context.ts';
import { configure, getKit } from './default.ts';
import { PostHogKitError } from './errors.ts';
import { defaultShouldCaptureError, statusOfError } from './exceptions.ts';
import type {
  CaptureExceptionOptions,
  CaptureOptions,
  DistinctIdOptions,
  FlagOptions,
  FlagResult,
  FlagValue,
  IdentifyOptions,
  JsonValue,
  PostHogKit,
} from './kit.ts';
import type { PostHogKitOptions } from './settings.ts';
import type { Properties, RequestHooks, RequestInfo, ResolvedUser } from './types.ts';

/** Per-middleware settings; each falls back to the kit's. */
export interface RequestOptions<TRaw = unknown> extends RequestHooks<TRaw> {
  /** @default the kit's `captureExceptions` (true) */
  captureExceptions?: boolean | undefined;
  /** @default the kit's `captureViews` (false) */
  captureViews?: boolean | undefined;
  /** @default the kit's `viewEventName` ('$pageview') */
  viewEventName?: string | undefined;
  /** @default the kit's `readPostHogCookie` (false) */
  readPostHogCookie?: boolean | undefined;
  /** @default the kit's `preferAuthenticatedUser` (false) */
  preferAuthenticatedUser?: boolean | undefined;
}

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

const REQUEST_KEYS = new Set([
  'captureExceptions',
  'captureViews',
  'viewEventName',
  'readPostHogCookie',
  'preferAuthenticatedUser',
  'extraTags',
  'requestFilter',
  'tagMap',
  'resolveUser',
  'shouldCaptureError',
]);

// Tracing headers: control characters removed, trimmed, capped, empty dropped.
// biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point.
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/g;
const MAX_HEADER_ID = 1000;

/** A tracing header value made safe to use as an id, or undefined. */
export function sanitizeHeaderId(value: string | null | undefined): string | undefined {
  if (typeof value !== 'string') return undefined;
  const clean = value.replace(CONTROL_CHARS, '').trim();
  if (clean === '') return undefined;
  return clean.length > MAX_HEADER_ID ? clean.slice(0, MAX_HEADER_ID).trimEnd() : clean;
}

/** The middleware's effective settings for one kit, resolved once. */
interface Resolved<TRaw> extends RequestHooks<TRaw> {
  kit: PostHogKit;
  captureExceptions: boolean;
  captureViews: boolean;
  viewEventName: string;
  readPostHogCookie: boolean;
  preferAuthenticatedUser: boolean;
}

/**
 * The framework-neutral half of every adapter: turns a `RequestInfo` into a scope,
 * runs the handler in it, applies the error policy and view capture. Built once per
 * middleware; the adapter only translates.
 */
export class RequestTracker<TRaw = unknown> {
  private readonly options: RequestOptions<TRaw>;
  private readonly fixedKit: PostHogKit | undefined;
  private resolved: Resolved<TRaw> | undefined;
  /** The slot of requests that are filtered out: every call is a no-op. */
  readonly inert: RequestScope<TRaw>;

  constructor(options: MiddlewareOptions<TRaw> = {}) {
    const { kit, ...rest } = options;
    const settingKeys = Object.keys(rest).filter(
      (k) => !REQUEST_KEYS.has(k) && rest[k as keyof typeof rest] !== undefined,
    );
    if (kit && settingKeys.length > 0) {
      throw new PostHogKitError(
        `${settingKeys.join(', ')}: set ${settingKeys.length > 1 ? 'these' : 'this'} on createPostHogKit(), not on the middleware, when \`kit\` is given`,
        'settings',
      );
    }
    // Kit settings on the middleware configure the default kit, so module-level sugar sees them.
    this.fixedKit =
      kit ?? (settingKeys.length > 0 ? configure(rest as PostHogKitOptions) : undefined);
    this.options = rest;
    this.inert = new RequestScope<TRaw>(undefined, undefined, undefined);
    if (this.fixedKit) this.resolve();
  }

  /** The kit this middleware reports to. */
  get kit(): PostHogKit {
    return this.resolve().kit;
  }

  private resolve(): Resolved<TRaw> {
    const kit = this.fixedKit ?? getKit();
    if (this.resolved?.kit === kit) return this.resolved;
    const o = this.options;
    const s = kit.settings;
    const hooks = kit.hooks as RequestHooks<TRaw>;
    this.resolved = {
      kit,
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
    return this.resolved;
  }

  /** Starts a request: its scope, or undefined when `requestFilter` skips it. */
  start(info: RequestInfo<TRaw>): RequestScope<TRaw> | undefined {
    const r = this.resolve();
    if (r.requestFilter) {
      const keep = callHook(r, 'requestFilter', () => r.requestFilter?.(info), true);
      if (keep === false) return undefined;
    }
    return new RequestScope(r, info, r.kit.context.current());
  }

  /** Runs `fn` inside the request's context. */
  run<R>(scope: RequestScope<TRaw>, fn: () => R): R {
    return scope.kit ? scope.kit.context.run(scope, fn) : fn();
  }

  /**
   * Reports a request error: captured once, per the policy, with the status. The
   * adapter re-throws or passes it on unchanged.
   */
  captureError(scope: RequestScope<TRaw> | undefined, error: unknown, status?: number): void {
    const r = scope?.resolved;
    if (!r?.captureExceptions || !scope?.info) return;
    const info = scope.info;
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
    r.kit.captureException(error, { properties: { $response_status_code: code ?? 500 } }, scope);
  }

  /** Whether `end()` has work for this request (view capture, or a waitUntil flush). */
  needsEnd(scope: RequestScope<TRaw> | undefined): boolean {
    const r = scope?.resolved;
    return r !== undefined && (r.captureViews || scope?.info?.waitUntil !== undefined);
  }

  /** Ends a request: view capture (opt-in) and, on serverless, the flush handed to waitUntil. */
  end(scope: RequestScope<TRaw> | undefined, status: number | undefined, route?: string): void {
    const r = scope?.resolved;
    if (!r || !scope?.info) return;
    if (r.captureViews) {
      const properties: Properties = { $response_status_code: status };
      if (route !== undefined) properties.$request_route = route;
      r.kit.capture(r.viewEventName, { properties }, scope);
    }
    const waitUntil = scope.info.waitUntil;
    const client = r.kit.client;
    if (waitUntil && client) {
      waitUntil(client.flush().catch((error: unknown) => r.kit.errors.background('flush', error)));
    }
  }
}

/** Calls a user hook; a throw goes through the error mode once per outage and yields the fallback. */
function callHook<T, F>(r: Resolved<unknown>, name: string, fn: () => T, fallback: F): T | F {
  try {
    const value = fn();
    r.kit.errors.recovered(`hook:${name}`);
    return value;
  } catch (error) {
    r.kit.errors.outage(`hook:${name}`, error, `${name} threw; the request goes on without it`);
    return fallback;
  }
}

const NO_IDS: { distinctId?: string; sessionId?: string } = {};

/**
 * One request's context, and the request's PostHog handle (`req.posthog`,
 * `ctx.state.posthog`, `c.var.posthog`, `event.context.posthog`): every call is bound
 * to this request, with or without AsyncLocalStorage.
 */
export class RequestScope<TRaw = unknown> extends Scope {
  /** @internal */ readonly resolved: Resolved<TRaw> | undefined;
  /** The translated request; undefined for a filtered-out request. */
  readonly info: RequestInfo<TRaw> | undefined;
  private ids: typeof NO_IDS | undefined;
  private tagCache: Properties | undefined;
  private tagCacheKey: string | undefined;

  /** @internal */
  constructor(
    resolved: Resolved<TRaw> | undefined,
    info: RequestInfo<TRaw> | undefined,
    parent: Scope | undefined,
  ) {
    super(parent, {});
    this.resolved = resolved;
    this.info = info;
  }

  /** The kit this request reports to; undefined when the request is filtered out. */
  override get kit(): PostHogKit | undefined {
    return this.resolved?.kit;
  }

  // ----- derived lazily from the request -----

  /** Tracing header, then the user, then the cookie (the user first with `preferAuthenticatedUser`). */
  protected override derivedDistinctId(): string | undefined {
    const header = this.headerIds().distinctId;
    if (header !== undefined && !this.resolved?.preferAuthenticatedUser) return header;
    const user = this.user();
    if (user?.id !== undefined) return user.id;
    return header ?? this.cookieIds().distinctId;
  }

  private headerIds(): typeof NO_IDS {
    if (this.ids) return this.ids;
    const info = this.info;
    if (!info) return NO_IDS;
    const distinctId = sanitizeHeaderId(info.header('x-posthog-distinct-id'));
    const sessionId = sanitizeHeaderId(info.header('x-posthog-session-id'));
    this.ids =
      distinctId === undefined && sessionId === undefined ? NO_IDS : { distinctId, sessionId };
    return this.ids;
  }

  private cookieIds(): typeof NO_IDS {
    const r = this.resolved;
    const h = this.headerIds();
    if (
      !r?.readPostHogCookie ||
      !this.info ||
      h.distinctId !== undefined ||
      h.sessionId !== undefined
    ) {
      return NO_IDS;
    }
    return readCookieIds(this.info.header('cookie'), r.kit.settings.apiKey);
  }

  private user(): { id?: string; email?: string } | undefined {
    const r = this.resolved;
    const info = this.info;
    if (!r || !info) return undefined;
    const resolve = r.resolveUser;
    const user: unknown = resolve
      ? callHook(r, 'resolveUser', () => resolve(info), undefined)
      : safeDefaultUser(info);
    if (!user || typeof user !== 'object') return undefined;
    // Framework user objects vary: Passport's `id`, Mongo's `_id`, OIDC's `sub`.
    const u = user as ResolvedUser & { _id?: unknown; userId?: unknown; sub?: unknown };
    const rawId = u.id ?? u._id ?? u.userId ?? u.sub;
    const id =
      typeof rawId === 'string' || typeof rawId === 'number' || typeof rawId === 'bigint'
        ? String(rawId) || undefined
        : rawId && typeof rawId === 'object' && typeof rawId.toString === 'function'
          ? String(rawId)
          : undefined;
    const email = typeof u.email === 'string' && u.email !== '' ? u.email : undefined;
    return id === undefined && email === undefined ? undefined : { id, email };
  }

  protected override derivedSessionId(): string | undefined {
    return this.headerIds().sessionId ?? this.cookieIds().sessionId;
  }

  /** The request's tags, recomputed only when the resolved user changes. */
  protected override derivedTags(): Properties | undefined {
    const r = this.resolved;
    const info = this.info;
    if (!r || !info) return undefined;
    const user = this.user();
    const key = user ? `${user.id}\u0000${user.email}` : '';
    if (this.tagCache && this.tagCacheKey === key) return this.tagCache;
    let tags: Properties = {};
    put(tags, '$current_url', maskUrl(info.url));
    put(tags, '$request_method', info.method);
    put(tags, '$request_path', info.path);
    put(tags, '$ip', info.ip);
    put(tags, '$user_agent', info.header('user-agent'));
    put(tags, 'email', user?.email);
    const extraTags = r.extraTags;
    if (extraTags) {
      const extra = callHook(r, 'extraTags', () => extraTags(info), undefined);
      if (extra && typeof extra === 'object') Object.assign(tags, extra);
    }
    const tagMap = r.tagMap;
    if (tagMap) {
      const mapped = callHook(r, 'tagMap', () => tagMap({ ...tags }), undefined);
      if (mapped && typeof mapped === 'object' && !Array.isArray(mapped)) tags = mapped;
    }
    this.tagCache = tags;
    this.tagCacheKey = key;
    return tags;
  }

  // ----- the handle: the sugar API bound to this request -----

  /** Captures an event with this request's ids and tags. */
  capture(event: string, options?: CaptureOptions): void {
    this.kit?.capture(event, options, this);
  }

  /** Captures an error with this request's ids and tags (once per error object). */
  captureException(error: unknown, options?: CaptureExceptionOptions): string | undefined {
    return this.kit?.captureException(error, options, this);
  }

  /** Sets person properties for this request's user (or `distinctId`). */
  identify(distinctId?: string, options?: IdentifyOptions): void {
    this.kit?.identify(distinctId, options, this);
  }

  /** Sets person properties (`$set`) for this request's user. */
  set(properties: Properties, options?: DistinctIdOptions): void {
    this.kit?.set(properties, options, this);
  }

  /** Sets person properties once (`$set_once`) for this request's user. */
  setOnce(properties: Properties, options?: DistinctIdOptions): void {
    this.kit?.setOnce(properties, options, this);
  }

  /** Links `alias` to this request's distinct id. */
  alias(alias: string, options?: DistinctIdOptions): void {
    this.kit?.alias(alias, options, this);
  }

  /** Whether a flag is on for this request's user. */
  async featureEnabled(key: string, options?: FlagOptions): Promise<boolean> {
    return (await this.kit?.featureEnabled(key, options, this)) ?? false;
  }

  /** A flag's value for this request's user. */
  async getFeatureFlag(key: string, options?: FlagOptions): Promise<FlagValue | undefined> {
    return this.kit?.getFeatureFlag(key, options, this);
  }

  /** A flag's value, variant and payload for this request's user. */
  async getFeatureFlagResult(key: string, options?: FlagOptions): Promise<FlagResult | undefined> {
    return this.kit?.getFeatureFlagResult(key, options, this);
  }

  /** A flag's payload for this request's user. */
  async getFeatureFlagPayload(key: string, options?: FlagOptions): Promise<JsonValue | undefined> {
    return this.kit?.getFeatureFlagPayload(key, options, this);
  }

  /** Every flag's value for this request's user. */
  async getAllFlags(options?: FlagOptions): Promise<Record<string, FlagValue>> {
    return (await this.kit?.getAllFlags(options, this)) ?? {};
  }

  /** Sets the distinct id of this request's events (after login, say). */
  setDistinctId(distinctId: string): void {
    this.own.distinctId = distinctId;
  }

  /** Sets the session id of this request's events. */
  setSessionId(sessionId: string): void {
    this.own.sessionId = sessionId;
  }
}

// Query parameters that carry credentials; their values never leave the process.
const SECRET_PARAM =
  /token|passw|pwd|secret|api[-_]?key|auth|credential|private[-_]?key|jwt|signature|^sig$|^code$|^key$/i;

/** The URL with credentials in query parameters (and anything shaped like a PostHog key) masked. */
export function maskUrl(url: string): string {
  const query = url.indexOf('?');
  if (query < 0) return url;
  const hash = url.indexOf('#', query);
  const end = hash < 0 ? url.length : hash;
  const masked = url
    .slice(query + 1, end)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return pair;
      let name = pair.slice(0, eq);
      try {
        name = decodeURIComponent(name);
      } catch {
        // Keep the raw name.
      }
      return SECRET_PARAM.test(name) ? `${pair.slice(0, eq)}=[redacted]` : pair;
    })
    .join('&')
    .replace(/ph[cxs]_[A-Za-z0-9_-]{4,}/g, '[redacted]');
  return `${url.slice(0, query + 1)}${masked}${url.slice(end)}`;
}

function put(tags: Properties, key: string, value: string | undefined): void {
  if (value !== undefined && value !== '') tags[key] = value;
}

function safeDefaultUser(info: RequestInfo<unknown>): unknown {
  try {
    return info.user?.();
  } catch {
    return undefined;
  }
}

/** Ids from the posthog-js cookie: an identified distinct id and a recent session. */
function readCookieIds(header: string | undefined, apiKey: string | undefined): typeof NO_IDS {
  if (!header || !apiKey) return NO_IDS;
  const name = `ph_${apiKey.replace(/\+/g, 'PL').replace(/\//g, 'SL').replace(/=/g, 'EQ')}_posthog`;
  const consent = cookieValue(header, `__ph_opt_in_out_${apiKey}`);
  if (consent !== undefined && /^(0|false|no|denied)$/i.test(consent)) return NO_IDS;
  const raw = cookieValue(header, name);
  if (!raw) return NO_IDS;
  try {
    const data = JSON.parse(raw) as {
      distinct_id?: unknown;
      $user_state?: unknown;
      $sesid?: unknown;
    };
    const distinctId =
      data.$user_state === 'identified' && typeof data.distinct_id === 'string'
        ? sanitizeHeaderId(data.distinct_id)
        : undefined;
    let sessionId: string | undefined;
    if (Array.isArray(data.$sesid) && typeof data.$sesid[1] === 'string') {
      const lastActivity = Number(data.$sesid[0]);
      // posthog-js rotates a session after 30 idle minutes.
      if (Number.isFinite(lastActivity) && Date.now() - lastActivity < 30 * 60_000) {
        sessionId = sanitizeHeaderId(data.$sesid[1]);
      }
    }
    return { distinctId, sessionId };
  } catch {
    return NO_IDS;
  }
}

function cookieValue(header: string, name: string): string | undefined {
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  }
  return undefined;
}
