// The test's handle on one browser tab running posthog-js.
import type { BrowserContext, Page } from 'playwright-core';

/** The ids the page itself uses: what the server's events must carry. */
export interface PageIds {
  distinctId: string;
  sessionId: string;
  windowId: string;
}

/** What the page's `fetch` or XHR got back. */
export interface CallResult {
  status: number;
  body: string;
}

export type Via = 'fetch' | 'xhr';

/** posthog-js options the tests always set (see `initPostHog`). */
const BASE_CONFIG = {
  // posthog-js drops HeadlessChrome's events as a bot's unless told otherwise (its advice for e2e tests).
  opt_out_useragent_filter: true,
  // The emulator answers posthog-node's /flags, not posthog-js's base64 form bodies; nothing here needs flags.
  advanced_disable_flags: true,
  autocapture: false,
  disable_session_recording: true,
  disable_surveys: true,
  capture_pageleave: false,
  // Send each event at once, so the page's own events are at the emulator when the test looks.
  request_batching: false,
};

export class PostHogPage {
  readonly context: BrowserContext;
  readonly page: Page;
  readonly origin: string;

  constructor(context: BrowserContext, page: Page, origin: string) {
    this.context = context;
    this.page = page;
    this.origin = origin;
  }

  /** Opens the page at `origin` in a new context (no cookies, no storage). */
  static async open(
    newContext: () => Promise<BrowserContext>,
    origin: string,
  ): Promise<PostHogPage> {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(`${origin}/`);
    return new PostHogPage(context, page, origin);
  }

  /**
   * `posthog.init(token, config)` with `api_host` on the page's `/ingest` proxy;
   * resolves once posthog-js has loaded.
   */
  async init(token: string, config: Record<string, unknown> = {}): Promise<void> {
    await this.page.evaluate(
      ([t, c]) =>
        new Promise<void>((resolve) => {
          window.posthog.init(t, { ...c, loaded: () => resolve() });
        }),
      [token, { api_host: `${this.origin}/ingest`, ...BASE_CONFIG, ...config }] as const,
    );
  }

  /** The page's `get_distinct_id()`, `get_session_id()` and window id (posthog-js's `onSessionId`). */
  ids(): Promise<PageIds> {
    return this.page.evaluate(() => {
      const ph = window.posthog;
      // get_session_id() first: onSessionId reports at once only when a session exists.
      const sessionId = ph.get_session_id();
      let windowId = '';
      const off = ph.onSessionId((_session: string, window: string) => {
        windowId = window;
      });
      off();
      return { distinctId: ph.get_distinct_id(), sessionId, windowId };
    });
  }

  /** Runs `posthog.<method>(...args)` in the page. */
  async call(method: string, ...args: unknown[]): Promise<void> {
    await this.page.evaluate(
      ([m, a]) => {
        (window.posthog as unknown as Record<string, (...x: unknown[]) => unknown>)[m]!(...a);
      },
      [method, args] as const,
    );
  }

  /** The app's own request to `url`, by fetch or XHR, as the page's code would make it. */
  request(
    url: string,
    via: Via,
    credentials: RequestCredentials = 'same-origin',
  ): Promise<CallResult> {
    return this.page.evaluate(([u, v, c]) => window.callApi(u, v, c), [
      url,
      via,
      credentials,
    ] as const);
  }

  close(): Promise<void> {
    return this.context.close();
  }
}

declare global {
  interface Window {
    // The parts of posthog-js the tests call; the page loads the real bundle.
    posthog: {
      init(token: string, config: Record<string, unknown>): void;
      get_distinct_id(): string;
      get_session_id(): string;
      onSessionId(cb: (sessionId: string, windowId: string) => void): () => void;
    };
    callApi(url: string, via: Via, credentials: RequestCredentials): Promise<CallResult>;
  }
}
