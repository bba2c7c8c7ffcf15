// What posthog-js sends, read as posthog-js reads it. The cookies here are written the
// way posthog-js 1.449 writes them (`name=encodeURIComponent(JSON.stringify(value))`);
// the browser/ project proves the same against the real posthog-js in Chromium.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CLOCK_SKEW_MS,
  cookieIds,
  headerIds,
  NO_IDS,
  optedOut,
  type PostHogJsSettings,
  postHogConsentCookieName,
  postHogCookieName,
  sanitizeHeaderId,
} from '../src/request/posthog-js.ts';
import { parseSettings } from '../src/settings.ts';

const MINUTE = 60_000;
const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);
const settings = (over: Partial<PostHogJsSettings> = {}): PostHogJsSettings => ({
  apiKey: 'phc_project',
  postHogCookieName: undefined,
  postHogConsentCookieName: undefined,
  sessionIdleTimeoutMs: 30 * MINUTE,
  ...over,
});

/** A cookie as posthog-js's cookie store writes it. */
const cookie = (name: string, value: unknown) =>
  `${name}=${encodeURIComponent(JSON.stringify(value))}`;
/** A request's header getter with these cookies (and headers). */
const request =
  (cookies: string[], headers: Record<string, string> = {}) =>
  (name: string): string | undefined =>
    name === 'cookie' ? cookies.join('; ') || undefined : headers[name];
const persisted = (value: Record<string, unknown>, name = 'ph_phc_project_posthog') =>
  cookie(name, value);
const session = (ageMs: number, id = 'sess-1', startAgeMs = ageMs) => [
  NOW - ageMs,
  id,
  NOW - startAgeMs,
];
const OPTED_OUT = cookie('__ph_opt_in_out_phc_project', 0);
const OPTED_IN = cookie('__ph_opt_in_out_phc_project', 1);

describe('tracing headers', () => {
  const tracing = {
    'x-posthog-distinct-id': 'user-1',
    'x-posthog-session-id': 'sess-1',
    'x-posthog-window-id': 'win-1',
  };

  it('give the distinct id, the session and the window', () => {
    expect(headerIds(request([], tracing), settings())).toEqual({
      distinctId: 'user-1',
      sessionId: 'sess-1',
      windowId: 'win-1',
    });
    expect(headerIds(request([]), settings())).toBe(NO_IDS);
  });

  it('give nothing once the consent cookie says opted out, and everything when opted in', () => {
    expect(headerIds(request([OPTED_OUT], tracing), settings())).toBe(NO_IDS);
    expect(headerIds(request([OPTED_IN], tracing), settings()).windowId).toBe('win-1');
  });

  it('drop control characters (a tab is the only one a browser sends) and cut at 1,000 characters', () => {
    expect(sanitizeHeaderId('Ada\tLovelace')).toBe('AdaLovelace');
    expect(sanitizeHeaderId('x'.repeat(1500))).toBe('x'.repeat(1000));
    const long = headerIds(request([], { 'x-posthog-window-id': 'w'.repeat(1001) }), settings());
    expect(long.windowId).toHaveLength(1000);
  });

  it('any other id a browser can put in a header comes out unchanged', () => {
    // Latin-1 without controls and without surrounding whitespace (HTTP drops it), within 1,000 characters.
    const latin1 = fc
      .string({ unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c)) })
      .map((s) => s.replace(/[\u007f-\u009f]/g, '').trim())
      .filter((s) => s !== '' && s.length <= 1000);
    fc.assert(fc.property(latin1, (id) => sanitizeHeaderId(id) === id));
  });
});

describe('cookie names', () => {
  it("are posthog-js's own unless set", () => {
    expect(postHogCookieName(settings())).toBe('ph_phc_project_posthog');
    expect(postHogCookieName(settings({ apiKey: 'a+b/c=' }))).toBe('ph_aPLbSLcEQ_posthog');
    expect(postHogCookieName(settings({ postHogCookieName: 'ph_myapp' }))).toBe('ph_myapp');
    expect(postHogConsentCookieName(settings())).toBe('__ph_opt_in_out_phc_project');
    expect(postHogConsentCookieName(settings({ postHogConsentCookieName: 'consent' }))).toBe(
      'consent',
    );
    expect(postHogCookieName(settings({ apiKey: undefined }))).toBeUndefined();
  });

  it('are checked once, as settings', () => {
    expect(() => parseSettings({ env: {}, postHogCookieName: 'ph myapp' })).toThrow(
      /postHogCookieName: expected a cookie name/,
    );
    expect(parseSettings({ env: {} }).sessionIdleTimeoutMs).toBe(30 * MINUTE);
    expect(() => parseSettings({ env: {}, sessionIdleTimeoutMs: 1_000 })).toThrow(
      /sessionIdleTimeoutMs/,
    );
  });
});

describe('consent', () => {
  it("follows posthog-js's no-like values, nothing else", () => {
    const consent = (value: string) => `__ph_opt_in_out_phc_project=${value}`;
    for (const value of ['0', 'false', 'no']) {
      expect(optedOut(consent(value), settings()), value).toBe(true);
    }
    for (const value of ['1', 'true', 'yes', 'denied', 'No', '']) {
      expect(optedOut(consent(value), settings()), value).toBe(false);
    }
    expect(optedOut(undefined, settings())).toBe(false);
    expect(optedOut('consent=0', settings({ postHogConsentCookieName: 'consent' }))).toBe(true);
  });
});

describe('the posthog-js cookie', () => {
  const read = (cookies: string[], over: Partial<PostHogJsSettings> = {}) =>
    cookieIds(request(cookies), settings(over), NOW);

  it('gives an identified id exactly as posthog-js keeps it, spaces included', () => {
    const ids = read([
      persisted({ distinct_id: '  Ada Lovelace  ', $user_state: 'identified', $sesid: session(0) }),
    ]);
    expect(ids).toEqual({ distinctId: '  Ada Lovelace  ', sessionId: 'sess-1' });
  });

  it('any id posthog-js accepts comes out unchanged', () => {
    const id = fc
      .string({ minLength: 1, maxLength: 1000, unit: 'grapheme' })
      .filter((s) => s.trim() !== '' && s !== '$posthog_cookieless');
    fc.assert(
      fc.property(id, (distinctId) => {
        const got = read([persisted({ distinct_id: distinctId, $user_state: 'identified' })]);
        return got.distinctId === distinctId;
      }),
    );
  });

  it('gives no anonymous id, blank id or cookieless sentinel; cuts an id at 1,000 characters', () => {
    expect(read([persisted({ distinct_id: 'anon-uuid', $user_state: 'anonymous' })])).toBe(NO_IDS);
    expect(read([persisted({ distinct_id: '   ', $user_state: 'identified' })])).toBe(NO_IDS);
    expect(
      read([persisted({ distinct_id: '$posthog_cookieless', $user_state: 'identified' })]),
    ).toBe(NO_IDS);
    const long = read([persisted({ distinct_id: 'x'.repeat(1500), $user_state: 'identified' })]);
    expect(long.distinctId).toBe('x'.repeat(1000));
  });

  it('an anonymous visitor still gets the session', () => {
    expect(
      read([persisted({ distinct_id: 'anon', $user_state: 'anonymous', $sesid: session(0) })]),
    ).toEqual({
      distinctId: undefined,
      sessionId: 'sess-1',
    });
  });

  it('reads the custom cookie name, the first cookie of a name, and nothing from garbage', () => {
    const value = { distinct_id: 'u', $user_state: 'identified' };
    expect(read([persisted(value, 'ph_myapp')], { postHogCookieName: 'ph_myapp' }).distinctId).toBe(
      'u',
    );
    expect(read([persisted(value, 'ph_myapp')]).distinctId).toBeUndefined();
    expect(
      read([
        persisted({ ...value, distinct_id: 'first' }),
        persisted({ ...value, distinct_id: 'second' }),
      ]).distinctId,
    ).toBe('first');
    for (const garbage of [
      'ph_phc_project_posthog=%E0%A4%A',
      'ph_phc_project_posthog={',
      'ph_phc_project_posthog=[1]',
      'ph_phc_project_posthog=null',
    ]) {
      expect(read([garbage]), garbage).toBe(NO_IDS);
    }
  });

  it('gives nothing once opted out', () => {
    const value = { distinct_id: 'u', $user_state: 'identified', $sesid: session(0) };
    expect(read([persisted(value), OPTED_OUT])).toBe(NO_IDS);
    expect(read([persisted(value), OPTED_IN]).distinctId).toBe('u');
  });
});

describe("the cookie's session", () => {
  const sessionOf = (
    sesid: unknown,
    over: Partial<PostHogJsSettings> = {},
    extra: Record<string, unknown> = {},
  ) => cookieIds(request([persisted({ $sesid: sesid, ...extra })]), settings(over), NOW).sessionId;

  it('is kept within the idle timeout plus the clock skew allowance, on either side of now', () => {
    const bound = 30 * MINUTE + CLOCK_SKEW_MS;
    expect(sessionOf(session(bound))).toBe('sess-1');
    expect(sessionOf(session(bound + 1))).toBeUndefined();
    // A browser clock ahead of the server's: posthog-js too measures the distance either way.
    expect(sessionOf(session(-bound))).toBe('sess-1');
    expect(sessionOf(session(-bound - 1))).toBeUndefined();
  });

  it('follows the timeout the cookie holds (clamped as posthog-js clamps it), else the setting', () => {
    const fortyFive = session(45 * MINUTE);
    expect(sessionOf(fortyFive)).toBeUndefined();
    expect(sessionOf(fortyFive, {}, { $configured_session_timeout_ms: 60 * MINUTE })).toBe(
      'sess-1',
    );
    expect(sessionOf(fortyFive, { sessionIdleTimeoutMs: 60 * MINUTE })).toBe('sess-1');
    // The cookie is the browser's truth and wins over the setting.
    expect(
      sessionOf(
        fortyFive,
        { sessionIdleTimeoutMs: 60 * MINUTE },
        { $configured_session_timeout_ms: 20 * MINUTE },
      ),
    ).toBeUndefined();
    // Below posthog-js's minimum (1 minute) it counts as 1 minute; above its maximum (10 hours) as 10 hours.
    expect(sessionOf(session(90_000), {}, { $configured_session_timeout_ms: 1 })).toBe('sess-1');
    expect(
      sessionOf(session(2.1 * MINUTE), {}, { $configured_session_timeout_ms: 1 }),
    ).toBeUndefined();
    const elevenHours = session(11 * 60 * MINUTE, 'sess-1', 11 * 60 * MINUTE);
    expect(
      sessionOf(elevenHours, {}, { $configured_session_timeout_ms: 100 * 60 * MINUTE }),
    ).toBeUndefined();
  });

  it('ends after 24 hours however active, as in posthog-js', () => {
    const day = 24 * 60 * MINUTE;
    expect(sessionOf(session(0, 'sess-1', day))).toBe('sess-1');
    expect(sessionOf(session(0, 'sess-1', day + CLOCK_SKEW_MS + 1))).toBeUndefined();
  });

  it('is none when the cookie does not hold a usable one', () => {
    for (const sesid of [
      undefined,
      'x',
      [],
      [NOW],
      [NOW, ''],
      [NOW, 7],
      ['now', 's'],
      [0, 's'],
      [null, 's'],
    ]) {
      expect(sessionOf(sesid), JSON.stringify(sesid)).toBeUndefined();
    }
    expect(sessionOf([NOW, ' s '])).toBe(' s ');
  });
});
