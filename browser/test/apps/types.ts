import type { RequestListener } from 'node:http';
import type { PostHogKit } from '@posthog-kit/core';

/** The headers posthog-js's `tracing_headers` adds: a cross-origin API must allow all three. */
export const POSTHOG_HEADERS = [
  'X-POSTHOG-DISTINCT-ID',
  'X-POSTHOG-SESSION-ID',
  'X-POSTHOG-WINDOW-ID',
];

/** The CORS setup of "Connecting posthog-js": one allowed origin, credentials for the cookie path. */
export interface CorsSetup {
  /** The page's origin, e.g. `http://127.0.0.1:5173`. */
  origin: string;
  /** Allow credentials (cookies): only the cookie path needs them. */
  credentials: boolean;
}

export interface ApiOptions {
  kit: PostHogKit;
  /** Set up CORS as the docs say; undefined: none at all. */
  cors?: CorsSetup | undefined;
  /** The middleware's `readPostHogCookie`. */
  readPostHogCookie?: boolean | undefined;
}

/**
 * One framework's API app. `GET /api/hit?marker=&via=` captures `api hit` through the
 * framework's request slot (`req.posthog`, ...) and answers `{"ok":true}`.
 */
export interface BrowserBridge {
  name: string;
  /** The app as a Node request listener (the harness serves it on loopback). */
  api(options: ApiOptions): Promise<RequestListener>;
}

/** The properties the `api hit` event carries. */
export function hitProperties(query: URLSearchParams): { marker: string; via: string } {
  return { marker: query.get('marker') ?? '', via: query.get('via') ?? '' };
}
