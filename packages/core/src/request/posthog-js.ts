// What posthog-js sends the server, read the way posthog-js itself reads it: its
// tracing headers, its persistence cookie and its consent cookie. The facts come
// from posthog-js's source (1.449): see "Connecting posthog-js" in the README.

import type { ResolvedSettings } from '../settings.ts';

/** The settings that say where posthog-js keeps its state. */
export type PostHogJsSettings = Pick<
  ResolvedSettings,
  'apiKey' | 'postHogCookieName' | 'postHogConsentCookieName' | 'sessionIdleTimeoutMs'
>;

/** Ids a request carries for the browser that made it. */
export interface BrowserIds {
  distinctId?: string | undefined;
  sessionId?: string | undefined;
  /** posthog-js's window (tab) id: only the tracing headers carry it. */
  windowId?: string | undefined;
}

export const NO_IDS: BrowserIds = {};

/** PostHog keeps the first 200 characters of a distinct id; a cut at 1,000 never changes whose it is. */
const MAX_ID = 1000;
/** posthog-js's distinct id in cookieless mode: never a person. */
const COOKIELESS_SENTINEL = '$posthog_cookieless';

// Tracing headers: control characters (C0, DEL, C1) removed, trimmed, capped, empty dropped.
// A browser sends no control character but the tab, and HTTP drops surrounding whitespace.
const isControl = (c: number) => c <= 0x1f || (c >= 0x7f && c <= 0x9f);

/** The value without control characters; the value itself when it has none (the rule). */
function withoutControl(value: string): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < value.length; i++) {
    if (!isControl(value.charCodeAt(i))) continue;
    out += value.slice(from, i);
    from = i + 1;
  }
  return from === 0 ? value : out + value.slice(from);
}

/** A tracing header value made safe to use as an id, or undefined. */
export function sanitizeHeaderId(value: string | null | undefined): string | undefined {
  if (typeof value !== 'string') return undefined;
  const clean = withoutControl(value).trim();
  if (clean === '') return undefined;
  return clean.length > MAX_ID ? clean.slice(0, MAX_ID).trimEnd() : clean;
}

/**
 * An id from posthog-js's cookie, exactly as posthog-js uses it (spaces and all), or
 * undefined when posthog-js would not use it either (blank, the cookieless sentinel).
 */
function cookieId(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.trim() === '' || value === COOKIELESS_SENTINEL) {
    return undefined;
  }
  return value.length > MAX_ID ? value.slice(0, MAX_ID) : value;
}

type HeaderGetter = (name: string) => string | undefined;

/**
 * The tracing headers' ids (`X-POSTHOG-DISTINCT-ID`, `X-POSTHOG-SESSION-ID`,
 * `X-POSTHOG-WINDOW-ID`); none when the browser opted out (consent in a cookie).
 */
export function headerIds(header: HeaderGetter, settings: PostHogJsSettings): BrowserIds {
  const distinctId = sanitizeHeaderId(header('x-posthog-distinct-id'));
  const sessionId = sanitizeHeaderId(header('x-posthog-session-id'));
  const windowId = sanitizeHeaderId(header('x-posthog-window-id'));
  if (distinctId === undefined && sessionId === undefined && windowId === undefined) return NO_IDS;
  // posthog-js keeps sending its headers after opt_out_capturing(): the consent cookie decides.
  if (optedOut(header('cookie'), settings)) return NO_IDS;
  return { distinctId, sessionId, windowId };
}

/** posthog-js's persistence cookie: `ph_<token>_posthog`, or `ph_<persistence_name>`. */
export function postHogCookieName(settings: PostHogJsSettings): string | undefined {
  if (settings.postHogCookieName !== undefined) return settings.postHogCookieName;
  const token = settings.apiKey;
  if (token === undefined) return undefined;
  return `ph_${token.replace(/\+/g, 'PL').replace(/\//g, 'SL').replace(/=/g, 'EQ')}_posthog`;
}

/** posthog-js's consent cookie (`opt_out_capturing_persistence_type: 'cookie'`): `__ph_opt_in_out_<token>`. */
export function postHogConsentCookieName(settings: PostHogJsSettings): string | undefined {
  if (settings.postHogConsentCookieName !== undefined) return settings.postHogConsentCookieName;
  return settings.apiKey === undefined ? undefined : `__ph_opt_in_out_${settings.apiKey}`;
}

// posthog-js's own "no-like" values of its consent store (it writes 0 and 1).
const NO_LIKE = new Set(['0', 'false', 'no']);

/** Whether the request's cookies say the browser opted out of capturing. */
export function optedOut(cookieHeader: string | undefined, settings: PostHogJsSettings): boolean {
  if (!cookieHeader) return false;
  const name = postHogConsentCookieName(settings);
  if (name === undefined) return false;
  const value = cookieValue(cookieHeader, name);
  return value !== undefined && NO_LIKE.has(value);
}

/** posthog-js's bounds on `session_idle_timeout_seconds` (it clamps to them), and its longest session. */
const MIN_IDLE_MS = 60_000;
const MAX_IDLE_MS = 10 * 3_600_000;
const MAX_SESSION_MS = 24 * 3_600_000;
/**
 * How far the browser's clock may be from the server's. The cookie's times are the
 * browser's; a skew beyond this can only drop a session, never keep a stale one longer.
 */
export const CLOCK_SKEW_MS = 60_000;

interface CookieData {
  distinct_id?: unknown;
  $user_state?: unknown;
  $sesid?: unknown;
  $configured_session_timeout_ms?: unknown;
}

/**
 * Ids from the posthog-js cookie: an identified distinct id (anonymous ones stay
 * personless on the server) and a session posthog-js would still be in; none when the
 * browser opted out.
 */
export function cookieIds(
  header: HeaderGetter,
  settings: PostHogJsSettings,
  now: number = Date.now(),
): BrowserIds {
  const cookies = header('cookie');
  const name = postHogCookieName(settings);
  if (!cookies || name === undefined || optedOut(cookies, settings)) return NO_IDS;
  const raw = cookieValue(cookies, name);
  if (!raw) return NO_IDS;
  let data: CookieData;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return NO_IDS;
    data = parsed as CookieData;
  } catch {
    return NO_IDS;
  }
  const distinctId = data.$user_state === 'identified' ? cookieId(data.distinct_id) : undefined;
  const sessionId = liveSession(data, settings.sessionIdleTimeoutMs, now);
  return distinctId === undefined && sessionId === undefined ? NO_IDS : { distinctId, sessionId };
}

/**
 * `$sesid` is `[last activity, session id, session start]` in the browser's clock.
 * posthog-js ends a session after its idle timeout (the cookie holds it when posthog-js
 * keeps `$configured_session_timeout_ms` there, else the setting says it) or 24 hours.
 */
function liveSession(data: CookieData, fallbackIdleMs: number, now: number): string | undefined {
  const sesid = data.$sesid;
  if (!Array.isArray(sesid)) return undefined;
  const id = cookieId(sesid[1]);
  const activity = timestamp(sesid[0]);
  if (id === undefined || activity === undefined) return undefined;
  const configured = timestamp(data.$configured_session_timeout_ms);
  const idleMs =
    configured === undefined
      ? fallbackIdleMs
      : Math.min(MAX_IDLE_MS, Math.max(MIN_IDLE_MS, configured));
  // Like posthog-js, a time in the future counts as far away as one in the past.
  if (Math.abs(now - activity) > idleMs + CLOCK_SKEW_MS) return undefined;
  const start = timestamp(sesid[2]);
  if (start !== undefined && Math.abs(now - start) > MAX_SESSION_MS + CLOCK_SKEW_MS)
    return undefined;
  return id;
}

const timestamp = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;

/**
 * The first cookie of that name (the browser's order; posthog-js reads the first too),
 * decoded; like posthog-js, a value that does not decode is none.
 */
function cookieValue(header: string, name: string): string | undefined {
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}
