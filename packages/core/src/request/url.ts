// Query parameters that carry credentials; their values never leave the process. Short
// names (`pin`, `sid`, ...) only as the whole name: `spinner` and `side` stay.
const SECRET_PARAM =
  /token|passw|passphrase|passcode|pwd|secret|api[-_]?key|access[-_]?key|awsaccesskeyid|auth|credential|private[-_]?key|jwt|signature|session|^(?:sig|sid|code|key|pass|pin|otp)$/i;
// Anything shaped like a PostHog key, wherever it is in the URL.
const POSTHOG_KEY = /ph[cxs]_[A-Za-z0-9_-]{4,}/g;
// `user:password@` after any `//`: the Host header's, or an absolute-form request target's.
const USERINFO = /(\/\/)[^/?#@\s]*@/g;

/** How much of a URL, a user agent or another request tag is kept (as ids are cut). */
export const MAX_TAG_LENGTH = 1_000;

/** A tag value cut to {@link MAX_TAG_LENGTH} characters. */
export function capTag(value: string | undefined): string | undefined {
  return value !== undefined && value.length > MAX_TAG_LENGTH
    ? value.slice(0, MAX_TAG_LENGTH)
    : value;
}

/**
 * The URL with credentials masked: query parameters that carry them, `user:password@`
 * (from the Host header or an absolute-form target), anything shaped like a PostHog key
 * (path included); then cut to {@link MAX_TAG_LENGTH}.
 */
export function maskUrl(url: string): string {
  // The regular expressions only where their first character is.
  let out = url.includes('@') ? url.replace(USERINFO, '$1[redacted]@') : url;
  const query = out.indexOf('?');
  if (query >= 0) {
    const hash = out.indexOf('#', query);
    const end = hash < 0 ? out.length : hash;
    const masked = out
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
      .join('&');
    out = `${out.slice(0, query + 1)}${masked}${out.slice(end)}`;
  }
  return capTag(out.includes('_') ? out.replace(POSTHOG_KEY, '[redacted]') : out) as string;
}
