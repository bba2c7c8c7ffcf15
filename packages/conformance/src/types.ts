import type { MiddlewareOptions, PostHogHandle } from '@posthog-kit/core';

/** What a neutral handler receives. */
export interface NeutralRequest {
  /** The request's handle from the framework's slot; undefined in an app without the adapter. */
  posthog: PostHogHandle | undefined;
  /** Route parameters. */
  params: Record<string, string>;
  /** The JSON body, parsed the framework's usual way (POST routes); undefined otherwise. */
  body?: unknown;
}

/** What a neutral handler answers. */
export interface NeutralResponse {
  /** @default 200 */
  status?: number;
  /** Sent as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Sent instead of `body` as a streamed `text/plain` response, one chunk each, with awaits between. */
  stream?: string[];
}

/** A handler the bridge mounts as a native route; a throw goes through the framework's error path. */
export type NeutralHandler = (req: NeutralRequest) => NeutralResponse | Promise<NeutralResponse>;

/** One route of the app under test (`:name` parameters). */
export interface RouteSpec {
  method: 'GET' | 'POST';
  path: string;
  handler: NeutralHandler;
}

/**
 * The app a bridge builds: the adapter first (unless `posthog` is false), then a
 * fake auth middleware that sets the framework's user (`req.user`, `ctx.state.user`,
 * ...) from the JSON in the `x-test-user` header, then the routes, then (Express) the
 * error handler. Error pages must carry no stack traces (production mode), so
 * responses can be compared with and without the adapter.
 */
export interface AppSpec {
  posthog: MiddlewareOptions | false;
  routes: RouteSpec[];
  /**
   * `error-handler-only`: only the framework's separate error handler is installed (with
   * these options), not the request middleware (Express's `posthogErrorHandler()` alone).
   * @default 'middleware'
   */
  mode?: 'middleware' | 'error-handler-only' | undefined;
}

/** A running app. */
export interface RunningApp {
  /** Base URL on loopback. */
  url: string;
  close(): Promise<void>;
}

/** An app served the serverless way: each request comes with the platform's `waitUntil`. */
export type ServerlessFetch = (
  request: Request,
  waitUntil: (promise: Promise<unknown>) => void,
) => Promise<Response>;

/** How the suite drives one framework. */
export interface AdapterBridge {
  /** The framework's name, for test titles. */
  name: string;
  start(spec: AppSpec): Promise<RunningApp>;
  /** The framework's own client error for a status, thrown from a handler. */
  httpError(status: number, message: string): unknown;
  /** The app served with a platform `waitUntil` (Workers, h3 on serverless), for frameworks that offer it. */
  serverless?(spec: AppSpec): Promise<ServerlessFetch>;
  /** Frameworks with a separate error handler (Express) support `mode: 'error-handler-only'`. */
  errorHandlerOnly?: boolean;
  /** What the framework cannot do; those cases are skipped. */
  skip?: {
    /** No matched route pattern (`/items/:id`) on view events. */
    matchedRoute?: boolean;
    /** No client IP in the `$ip` tag. */
    clientIp?: boolean;
  };
}

/** The matchers the suite uses: Vitest's and Jest's `expect` fit. */
export interface Matchers {
  toBe(expected: unknown): void;
  toEqual(expected: unknown): void;
  toMatchObject(expected: object): void;
  toHaveLength(length: number): void;
  toContain(item: unknown): void;
  toMatch(pattern: RegExp | string): void;
  toBeUndefined(): void;
  toBeGreaterThan(n: number): void;
  not: Omit<Matchers, 'not'>;
}

/**
 * The test runner the suite registers its cases with: Vitest's or Jest's globals as they
 * are; for node:test, map `before`/`after` and pass an `expect` (the `expect` package).
 */
export interface TestRunner {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: () => Promise<void> | void, timeoutMs?: number): void;
  beforeAll(fn: () => Promise<unknown> | unknown): void;
  afterAll(fn: () => Promise<unknown> | unknown): void;
  beforeEach(fn: () => Promise<unknown> | unknown): void;
  expect(actual: unknown, message?: string): Matchers;
}
