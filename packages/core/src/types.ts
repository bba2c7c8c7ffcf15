/** Event properties. */
export type Properties = Record<string, unknown>;

/** Groups an event or a flag evaluation belongs to: group type → group key. */
export type Groups = Record<string, string | number>;

/** The user a request is made by, as the user resolver sees it. */
export interface ResolvedUser {
  /** The distinct id to use for this user. */
  id?: string | number | undefined;
  /** Sent as the `email` tag. */
  email?: string | undefined;
}

/**
 * A framework request translated to what core needs. Adapters build one per
 * request; every field that costs something is read lazily, on first use.
 */
export interface RequestInfo<TRaw = unknown> {
  /** HTTP method, upper case. */
  readonly method: string;
  /** The full URL when the framework knows scheme and host, else path and query. */
  readonly url: string;
  /** The path, without query string. */
  readonly path: string;
  /** The client IP from the framework's proxy-aware getter, when there is one. */
  readonly ip: string | undefined;
  /** The framework's own request object (Express `req`, Koa `ctx`, Hono `c`, h3 `event`). */
  readonly raw: TRaw;
  /** A request header by lower-case name; the first value when repeated. */
  header(name: string): string | undefined;
  /**
   * The framework's default user (Passport's `req.user`, `ctx.state.user`, ...), any shape:
   * core reads `id` (or `_id`, `userId`, `sub`) and `email`.
   */
  user?(): unknown;
  /** The route pattern the framework matched (`/users/:id`), once it has routed; for view events. */
  route?(): string | undefined;
  /** The platform's `waitUntil` for this request (Workers, h3 on serverless), when it has one. */
  waitUntil?(promise: Promise<unknown>): void;
}

/** The per-request hooks, in code only. */
export interface RequestHooks<TRaw = unknown> {
  /**
   * Extra tags for every event of the request, merged after the built-in tags.
   * @default undefined
   */
  extraTags?(req: RequestInfo<TRaw>): Properties | null | undefined;
  /**
   * Return `false` to skip the request entirely: no context, no capture. The handler always runs.
   * @default undefined (every request is tracked)
   */
  requestFilter?(req: RequestInfo<TRaw>): boolean;
  /**
   * Rewrites the final tags (built-in plus extra) before they are used.
   * @default undefined
   */
  tagMap?(tags: Properties): Properties;
  /**
   * Who makes the request: `id` becomes the distinct id (after the tracing header), `email` a tag.
   * @default the adapter's default: Passport's `req.user`, Koa's `ctx.state.user`, ...
   */
  resolveUser?(req: RequestInfo<TRaw>): ResolvedUser | null | undefined;
  /**
   * Whether a request error is captured.
   * @default capture when the status is absent or >= 500
   */
  shouldCaptureError?(error: unknown, status: number | undefined, req: RequestInfo<TRaw>): boolean;
}

/** Storage for the context: AsyncLocalStorage or anything with the same two calls. */
export interface ContextStorage<T = unknown> {
  run<R>(store: T, fn: () => R): R;
  get(): T | undefined;
}

/** How an exception reached the kit, for `$exception_list[0].mechanism`. */
export interface ExceptionMechanism {
  type: string;
  handled: boolean;
}
