import { describeError, type ErrorReporter } from '../errors.ts';

/** How long any one call to the flag cache store may take before it counts as failed. */
export const STORE_TIMEOUT_MS = 500;
/** While the store is failing, how often one probe checks whether it answers again. */
export const STORE_RETRY_MS = 1_000;
/** Entries of the default in-memory store before the oldest are dropped. */
export const MEMORY_STORE_MAX_ENTRIES = 10_000;

/** The part of a Keyv instance the kit uses. */
export interface KeyvLike {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown, ttl?: number): Promise<unknown>;
  delete(key: string): Promise<unknown>;
  on?(event: 'error', listener: (error: unknown) => void): unknown;
  off?(event: 'error', listener: (error: unknown) => void): unknown;
}

/** The node-redis client @keyv/redis exposes, as far as the atomic lease needs it. */
export interface RedisEvalClient {
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  unref?(): void;
}

/** The store the flag caches use, resolved from the `cache` and `redisUrl` settings. */
export interface ResolvedStore {
  keyv: KeyvLike;
  /** A connected Redis client for the atomic lease, when the store is @keyv/redis. */
  redis: (() => Promise<RedisEvalClient>) | undefined;
  /** False for the default in-memory store: it is this process's own. */
  shared: boolean;
  /** Closes what the kit opened itself (a Redis connection built from `redisUrl`). */
  close: (() => Promise<void>) | undefined;
  /** What the store is, for messages. */
  description: string;
}

/** What a store call gives: its value, or a failure (down, slow, closed). */
export type StoreResult<T> = { ok: true; value: T } | { ok: false };

/** A value a store returned that is not JSON at all. */
export const GARBAGE: unique symbol = Symbol('posthog-kit.garbage');

/** Whether the caches' store is shared with other processes (anything but the default). */
export function isSharedStore(cache: unknown, redisUrl: string | undefined): boolean {
  return cache !== undefined || redisUrl !== undefined;
}

/** The Redis URL and its password, to be redacted from every message. */
export function redisSecrets(redisUrl: string | undefined): string[] {
  if (!redisUrl) return [];
  try {
    const password = decodeURIComponent(new URL(redisUrl).password);
    return password ? [redisUrl, password] : [redisUrl];
  } catch {
    return [redisUrl];
  }
}

type KeyvModule = typeof import('keyv');

function isKeyvInstance(value: object): value is KeyvLike {
  const v = value as { serializeData?: unknown; deserializeData?: unknown; store?: unknown };
  return typeof v.serializeData === 'function' && typeof v.deserializeData === 'function';
}

interface KeyvRedisLike {
  getClient(): Promise<RedisEvalClient>;
  disconnect(force?: boolean): Promise<void>;
}

function asKeyvRedis(store: unknown): KeyvRedisLike | undefined {
  const s = store as { getClient?: unknown; client?: { eval?: unknown } } | null | undefined;
  return s && typeof s.getClient === 'function' && typeof s.client?.eval === 'function'
    ? (s as unknown as KeyvRedisLike)
    : undefined;
}

/**
 * The connected client, one connection attempt at a time: @keyv/redis connects in
 * `getClient()`, and two concurrent attempts make the second fail and drop the socket.
 */
function connector(store: KeyvRedisLike, onFirst?: (client: RedisEvalClient) => void) {
  let connecting: Promise<RedisEvalClient> | undefined;
  let first = true;
  return (): Promise<RedisEvalClient> => {
    connecting ??= store.getClient().then(
      (client) => {
        connecting = undefined;
        if (first) {
          first = false;
          onFirst?.(client);
        }
        return client;
      },
      (error: unknown) => {
        connecting = undefined;
        throw error;
      },
    );
    return connecting;
  };
}

/** A Map that drops its oldest entries past a size: the default store cannot grow without bound. */
class BoundedMap<K, V> extends Map<K, V> {
  private readonly max: number;

  constructor(max: number) {
    super();
    this.max = max;
  }

  override set(key: K, value: V): this {
    if (this.has(key)) this.delete(key);
    super.set(key, value);
    while (this.size > this.max) {
      const oldest = this.keys().next();
      if (oldest.done) break;
      this.delete(oldest.value);
    }
    return this;
  }
}

const json = {
  serialize: (data: unknown) => JSON.stringify(data),
  deserialize: (text: string) => JSON.parse(text),
};

/**
 * Builds the store from the settings: the `cache` given in code (a Keyv instance is used as
 * it is, a bare store is wrapped in a Keyv that stores plain JSON under the exact key), else
 * a Redis store from `redisUrl` (@keyv/redis, loaded only then), else an in-memory Keyv that
 * shares nothing. Keyv itself is loaded lazily too, so core's main entry stays runtime-neutral.
 */
export async function resolveStore(
  cache: unknown,
  redisUrl: string | undefined,
): Promise<ResolvedStore> {
  if (cache !== undefined && isKeyvInstance(cache as object)) {
    const keyv = cache as KeyvLike & { store?: unknown };
    const redis = asKeyvRedis(keyv.store);
    return {
      keyv,
      redis: redis ? connector(redis) : undefined,
      shared: true,
      close: undefined,
      description: redis ? 'the given Redis Keyv' : 'the given Keyv',
    };
  }
  const { Keyv } = (await import('keyv')) as KeyvModule;
  if (cache !== undefined) {
    const redis = asKeyvRedis(cache);
    const keyv = new Keyv(cache as never, {
      namespace: undefined,
      throwOnErrors: true,
      ...json,
    }) as unknown as KeyvLike;
    return {
      keyv,
      redis: redis ? connector(redis) : undefined,
      shared: true,
      close: undefined,
      description: redis ? 'the given Redis store' : 'the given Keyv store',
    };
  }
  if (redisUrl !== undefined) {
    let mod: typeof import('@keyv/redis');
    try {
      mod = await import('@keyv/redis');
    } catch (error) {
      throw new Error(
        `POSTHOG_REDIS_URL is set but @keyv/redis could not be loaded (${describeError(error)}): install it with \`npm install @keyv/redis\``,
      );
    }
    const store = new mod.default(
      {
        url: redisUrl,
        // Fail at once while disconnected: a command queued through an outage would run
        // late, after the kit has moved on (a stale lease or publish).
        disableOfflineQueue: true,
        socket: {
          connectTimeout: 2_000,
          reconnectStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 1_000),
        },
      },
      { throwOnConnectError: true, throwOnErrors: true },
    );
    const keyv = new Keyv(store as never, {
      namespace: undefined,
      throwOnErrors: true,
      ...json,
    }) as unknown as KeyvLike;
    return {
      keyv,
      // The kit's own connection must not keep a script or worker alive.
      redis: connector(store as unknown as KeyvRedisLike, (client) => client.unref?.()),
      shared: true,
      close: () => store.disconnect(true),
      description: 'Redis',
    };
  }
  const keyv = new Keyv(new BoundedMap<string, unknown>(MEMORY_STORE_MAX_ENTRIES) as never, {
    namespace: undefined,
    serialize: undefined,
    deserialize: undefined,
  }) as unknown as KeyvLike;
  return {
    keyv,
    redis: undefined,
    shared: false,
    close: undefined,
    description: 'the in-memory store',
  };
}

/** Reads a key; a value that is not JSON at all comes back as `GARBAGE`, not as an error. */
export async function readKey(keyv: KeyvLike, key: string): Promise<unknown> {
  try {
    return await keyv.get(key);
  } catch (error) {
    if ((error as { name?: unknown } | null)?.name === 'SyntaxError') return GARBAGE;
    throw error;
  }
}

class StoreTimeout extends Error {
  constructor(what: string) {
    super(`${what} timed out after ${STORE_TIMEOUT_MS} ms`);
    this.name = 'StoreTimeout';
  }
}

const unref = (timer: unknown) => (timer as { unref?: () => void }).unref?.();

/**
 * Every call the flag caches make to their store goes through here: each has a timeout,
 * a failure (thrown, an `error` event from the store meanwhile, a timeout) is reported once
 * per outage, and while the store is failing calls fail at once, without waiting, until a
 * probe in the background finds it answering again. Nothing here ever rejects.
 */
export class GuardedStore {
  /** The resolved store; undefined when it could not be built (reported once). */
  readonly ready: Promise<ResolvedStore | undefined>;
  private readonly errors: ErrorReporter;
  private readonly outageKey: string;
  private down = false;
  private closed = false;
  private errorCount = 0;
  private lastError: unknown;
  private probeTimer: ReturnType<typeof setTimeout> | undefined;
  private resolved: ResolvedStore | undefined;
  private readonly onError = (error: unknown) => {
    this.errorCount++;
    this.lastError = error;
  };

  constructor(resolving: Promise<ResolvedStore>, errors: ErrorReporter, outageKey = 'flag-cache') {
    this.errors = errors;
    this.outageKey = outageKey;
    this.ready = resolving.then(
      (store) => {
        if (this.closed) {
          void store.close?.().catch(() => {});
          return undefined;
        }
        store.keyv.on?.('error', this.onError);
        this.resolved = store;
        return store;
      },
      (error: unknown) => {
        this.errors.background(
          'flag-cache',
          error,
          `flag caches are off: ${describeError(error)}; each process polls flag definitions by itself`,
        );
        return undefined;
      },
    );
  }

  /** Whether calls fail at once because the store is failing. */
  get failing(): boolean {
    return this.down;
  }

  /**
   * Runs `op` on the store within the timeout. `deadline` tells a multi-step op when to give
   * up between steps, so no step of a timed-out call runs late.
   */
  async run<T>(
    what: string,
    op: (store: ResolvedStore, deadline: number) => Promise<T>,
    probe = false,
  ): Promise<StoreResult<T>> {
    if (this.closed || (this.down && !probe)) return { ok: false };
    // Building the store happens once and loads modules only (no network): not timed.
    const store = this.resolved ?? (await this.ready);
    if (!store || this.closed) return { ok: false };
    const deadline = Date.now() + STORE_TIMEOUT_MS;
    const errorsBefore = this.errorCount;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      (async () => {
        if (store.redis) {
          // Connect first, so a call that waited for a connection never runs after its deadline.
          await store.redis();
          if (Date.now() > deadline) throw new StoreTimeout(what);
        }
        return op(store, deadline);
      })().then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      ),
      // Not unref'd: someone awaits this call, and the kit's own Redis socket is unref'd,
      // so this timer is what keeps a script alive until the answer (or the timeout).
      new Promise<{ ok: false; error: unknown }>((resolve) => {
        timer = setTimeout(
          () => resolve({ ok: false, error: new StoreTimeout(what) }),
          STORE_TIMEOUT_MS,
        );
      }),
    ]);
    clearTimeout(timer);
    if (outcome.ok && this.errorCount === errorsBefore) {
      // Only the probe ends an outage: a call that began before it may still succeed late.
      if (probe) this.up();
      return outcome;
    }
    this.fail(outcome.ok ? this.lastError : outcome.error);
    return { ok: false };
  }

  /** Stops probing and closes what the kit opened; later calls fail at once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.probeTimer);
    const store = this.resolved;
    if (!store) return;
    store.keyv.off?.('error', this.onError);
    await store.close?.().catch(() => {});
  }

  private fail(error: unknown): void {
    const description = this.resolved?.description ?? 'the store';
    this.errors.outage(
      this.outageKey,
      error,
      `flag cache (${description}) is failing: ${describeError(error)}; flags are evaluated from this process's own definitions, fetched by itself, until the store is back`,
    );
    if (this.down) return;
    this.down = true;
    this.scheduleProbe();
  }

  private up(): void {
    if (!this.down) return;
    this.down = false;
    clearTimeout(this.probeTimer);
    if (this.errors.recovered(this.outageKey)) {
      this.errors.warn(`flag cache (${this.resolved?.description ?? 'the store'}) answers again`);
    }
  }

  private scheduleProbe(): void {
    if (this.closed) return;
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => {
      void this.run('probe', (s) => readKey(s.keyv, 'posthog-kit:probe'), true).then((r) => {
        if (!r.ok && this.down) this.scheduleProbe();
      });
    }, STORE_RETRY_MS);
    unref(this.probeTimer);
  }
}

/** `prefix:` plus a short hash of the project key: two projects never share an entry. */
export async function projectScope(prefix: string, projectApiKey: string): Promise<string> {
  return `${prefix}:${(await sha256Hex(projectApiKey)).slice(0, 12)}`;
}

/** SHA-256 as hex, with Web Crypto (no `node:` import). */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  const bytes = new Uint8Array(digest);
  let hex = '';
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0');
  return hex;
}

/** A random owner token for a lease. */
export function randomToken(): string {
  return crypto.randomUUID();
}
