import { uuidv7 } from 'posthog-node';
import type { PostHogApi } from '../api.ts';
import { Scope } from '../context.ts';
import { RequestFlags } from '../flags/snapshot.ts';
import type { PostHogKit } from '../kit.ts';
import type { KitParts } from '../operations.ts';
import type { RequestSettingKey, ResolvedSettings } from '../settings.ts';
import type { Properties, RequestHooks, RequestInfo, ResolvedUser } from '../types.ts';
import { createHandle, type PostHogHandle } from './handle.ts';
import { type BrowserIds, cookieIds, headerIds, NO_IDS } from './posthog-js.ts';
import { capTag, maskUrl } from './url.ts';

/** A middleware's effective settings for one kit, resolved once. */
export type Resolved<TRaw> = RequestHooks<TRaw> &
  Pick<ResolvedSettings, RequestSettingKey> & { kit: PostHogKit; parts: KitParts };

/** Calls a user hook; a throw goes through the error mode once per outage and yields the fallback. */
export function callHook<T, F>(
  r: Resolved<unknown>,
  name: string,
  fn: () => T,
  fallback: F,
): T | F {
  try {
    const value = fn();
    r.kit.errors.recovered(`hook:${name}`);
    return value;
  } catch (error) {
    r.kit.errors.outage(`hook:${name}`, error, `${name} threw; the request goes on without it`);
    return fallback;
  }
}

/** A plain copy of a hook's object: getters and proxies run here, inside the hook's guard. */
function plainCopy(value: unknown): Properties | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const out: Properties = {};
  for (const key of Object.keys(value)) out[key] = (value as Properties)[key];
  return out;
}

const put = (tags: Properties, key: string, value: string | undefined) => {
  if (value !== undefined && value !== '') tags[key] = value;
};

/** A user object's id and email: Passport's `id`, Mongo's `_id`, OIDC's `sub`, ... */
function userOf(user: unknown): { id?: string; email?: string } | undefined {
  if (!user || typeof user !== 'object') return undefined;
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

/** The context of one request: ids and tags derived lazily from it, on first use. */
export class RequestScope<TRaw = unknown> extends Scope {
  readonly resolved: Resolved<TRaw> | undefined;
  readonly info: RequestInfo<TRaw> | undefined;
  readonly #inert: PostHogApi | undefined;
  #handle: PostHogHandle | undefined;
  #ids: BrowserIds | undefined;
  #tags: Properties | undefined;
  #tagsKey: string | undefined;
  #personless: string | undefined;
  #flags: RequestFlags | undefined;

  constructor(
    resolved: Resolved<TRaw> | undefined,
    info: RequestInfo<TRaw> | undefined,
    parent: Scope | undefined,
    inert?: PostHogApi,
  ) {
    super(parent, {});
    this.resolved = resolved;
    this.info = info;
    this.#inert = inert;
  }

  /** Inside a tracked request the sugar acts on its kit; inside a skipped one, on nothing. */
  override get api(): PostHogApi | undefined {
    return this.resolved ? this.resolved.kit : this.#inert;
  }

  /** The flags read in this request: consistent for its rest, on its events. */
  override get flagReads(): RequestFlags | undefined {
    if (!this.resolved) return undefined;
    this.#flags ??= new RequestFlags();
    return this.#flags;
  }

  override get personlessId(): string | undefined {
    if (!this.resolved) return undefined;
    this.#personless ??= uuidv7();
    return this.#personless;
  }

  /** The request's handle. */
  get posthog(): PostHogHandle {
    this.#handle ??= createHandle(this.resolved?.parts, this.resolved ? this : undefined);
    return this.#handle;
  }

  /** False when `requestFilter` skipped the request. */
  get tracked(): boolean {
    return this.resolved !== undefined;
  }

  /** Tracing header, then the user, then the cookie (the user first with `preferAuthenticatedUser`). */
  protected override derivedDistinctId(): string | undefined {
    const header = this.#headerIds().distinctId;
    if (header !== undefined && !this.resolved?.preferAuthenticatedUser) return header;
    const user = this.#resolveUser();
    if (user?.id !== undefined) return user.id;
    return header ?? this.#cookieIds().distinctId;
  }

  protected override derivedSessionId(): string | undefined {
    return this.#headerIds().sessionId ?? this.#cookieIds().sessionId;
  }

  #headerIds(): BrowserIds {
    const info = this.info;
    const r = this.resolved;
    if (!info || !r) return NO_IDS;
    this.#ids ??= headerIds((name) => info.header(name), r.kit.settings);
    return this.#ids;
  }

  #cookieIds(): BrowserIds {
    const r = this.resolved;
    const info = this.info;
    if (!r?.readPostHogCookie || !info || this.#headerIds() !== NO_IDS) return NO_IDS;
    return cookieIds((name) => info.header(name), r.kit.settings);
  }

  #resolveUser(): { id?: string; email?: string } | undefined {
    const r = this.resolved;
    const info = this.info;
    if (!r || !info) return undefined;
    // The hook runs again per read (a login mid-request changes the user); reading it is guarded.
    const resolve = r.resolveUser;
    if (resolve) return callHook(r, 'resolveUser', () => userOf(resolve(info)), undefined);
    try {
      return userOf(info.user?.());
    } catch {
      return undefined;
    }
  }

  /** The request's tags, recomputed only when the resolved user changes. */
  protected override derivedTags(): Properties | undefined {
    const r = this.resolved;
    const info = this.info;
    if (!r || !info) return undefined;
    const user = this.#resolveUser();
    const key = user ? `${user.id}\u0000${user.email}` : '';
    if (this.#tags && this.#tagsKey === key) return this.#tags;
    // The three every request has, in one literal (one shape, no growing), then the rest.
    let tags: Properties = {
      $current_url: maskUrl(info.url),
      $request_method: info.method,
      $request_path: info.path,
    };
    put(tags, '$ip', info.ip);
    const userAgent = capTag(info.header('user-agent'));
    put(tags, '$user_agent', userAgent);
    // posthog-python's name for the same header, as PostHog's Django integration sends it.
    put(tags, '$raw_user_agent', userAgent);
    put(tags, 'email', user?.email);
    put(tags, '$window_id', this.#headerIds().windowId);
    const extraTags = r.extraTags;
    if (extraTags) {
      const extra = callHook(r, 'extraTags', () => plainCopy(extraTags(info)), undefined);
      if (extra) Object.assign(tags, extra);
    }
    const tagMap = r.tagMap;
    if (tagMap) {
      const mapped = callHook(r, 'tagMap', () => plainCopy(tagMap({ ...tags })), undefined);
      if (mapped) tags = mapped;
    }
    this.#tags = tags;
    this.#tagsKey = key;
    return tags;
  }
}
