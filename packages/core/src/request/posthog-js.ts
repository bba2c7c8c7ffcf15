// What posthog-js sends the server: its tracing headers and its cookie.

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

/** Ids a request carries for the browser that made it. */
export interface BrowserIds {
  distinctId?: string | undefined;
  sessionId?: string | undefined;
}

export const NO_IDS: BrowserIds = {};

/** The tracing headers' ids (`X-POSTHOG-DISTINCT-ID`, `X-POSTHOG-SESSION-ID`). */
export function headerIds(header: (name: string) => string | undefined): BrowserIds {
  const distinctId = sanitizeHeaderId(header('x-posthog-distinct-id'));
  const sessionId = sanitizeHeaderId(header('x-posthog-session-id'));
  return distinctId === undefined && sessionId === undefined ? NO_IDS : { distinctId, sessionId };
}

/** Ids from the posthog-js cookie: an identified distinct id and a recent session. */
export function cookieIds(header: string | undefined, apiKey: string | undefined): BrowserIds {
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
