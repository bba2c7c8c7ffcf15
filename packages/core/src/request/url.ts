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
