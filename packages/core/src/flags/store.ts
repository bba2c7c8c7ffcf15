import { describeError, type ErrorReporter } from '../errors.ts';

/** How long any one call to the flag cache store may take before it counts as failed. */
export const STORE_TIMEOUT_MS = 500;
/**
 * What the calls of a process may add until one has succeeded (connecting, and the first
 * answer, on a busy machine; node-redis's connect timeout is the same): a fleet that starts
 * at once connects slowly, and a process that gave up on the store would ask PostHog
 * instead, all of them at once. A refused connection fails at once all the same.
 */
export const STORE_FIRST_CONNECT_MS = 5_000;
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
  evalSha?(sha1: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
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
  /**
   * Asks a Redis Cluster for its topology again: node-redis learns of a failover only from
   * a MOVED reply, which a dead master never sends, so the kit asks while the store fails.
   */
  recover: (() => Promise<void>) | undefined;
  /** What the store is, for messages. */
  description: string;
}

/** What a store call touches: after a failure the probe does the same kind of call to the same slot. */
export interface StoreTarget {
  /** The key it reads or writes. */
  key: string;
  /** Whether it writes. Redis at `maxmemory` with `noeviction` refuses writes and still answers reads. */
  write: boolean;
}

/** What a store call gives: its value, or a failure (down, slow, closed). */
export type StoreResult<T> = { ok: true; value: T } | { ok: false };

/** A value a store returned that is not JSON at all. */
export const GARBAGE: unique symbol = Symbol('posthog-kit.garbage');

/** Whether the caches' store is shared with other processes (anything but the default). */
export function isSharedStore(cache: unknown, redisUrl: string | undefined): boolean {
  return cache !== undefined || redisUrl !== undefined;
}

/**
 * The URLs in `redisUrl`: one is a Redis server; several, comma-separated, are the seed
 * nodes of a Redis Cluster (`redis://10.0.0.1:6379,redis://10.0.0.2:6379,...`).
 */
export function redisUrls(redisUrl: string): string[] {
  return redisUrl
    .split(',')
    .map((url) => url.trim())
    .filter(Boolean);
}

/** The Redis URLs and their passwords, to be redacted from every message. */
export function redisSecrets(redisUrl: string | undefined): string[] {
  if (!redisUrl) return [];
  const secrets = new Set([redisUrl]);
  for (const url of redisUrls(redisUrl)) {
    secrets.add(url);
    try {
      const password = decodeURIComponent(new URL(url).password);
      if (password) secrets.add(password);
    } catch {
      // Not a URL: the whole text is redacted already.
    }
  }
  return [...secrets];
}

type KeyvModule = typeof import('keyv');

function isKeyvInstance(value: object): value is KeyvLike {
  const v = value as { serializeData?: unknown; deserializeData?: unknown; store?: unknown };
  return typeof v.serializeData === 'function' && typeof v.deserializeData === 'function';
}

interface KeyvRedisLike {
  getClient(): Promise<RedisEvalClient>;
  disconnect(force?: boolean): Promise<void>;
  isCluster?(): boolean;
}

/** The parts of node-redis's cluster client the kit uses (typed in @redis/client; `_slots` included). */
interface ClusterLike {
  nodeByAddress?: Map<string, { client?: RedisEvalClient; pubSub?: { client?: RedisEvalClient } }>;
  masters?: Array<{ client?: RedisEvalClient & { isReady?: boolean } }>;
  replicas?: Array<{ client?: RedisEvalClient & { isReady?: boolean } }>;
  _slots?: { rediscover?(startWith: unknown): Promise<void> };
  on?(event: 'node-connect', listener: () => void): unknown;
}

const isCluster = (store: KeyvRedisLike): boolean => {
  try {
    return store.isCluster?.() === true;
  } catch {
    return false;
  }
};

/** Unreferences the kit's own Redis sockets: a server's, or every node's of a cluster (also later ones). */
function unrefConnection(client: RedisEvalClient): void {
  if (typeof client.unref === 'function') {
    client.unref();
    return;
  }
  const cluster = client as unknown as ClusterLike;
  const unrefNodes = () => {
    for (const node of cluster.nodeByAddress?.values() ?? []) {
      node.client?.unref?.();
      node.pubSub?.client?.unref?.();
    }
  };
  unrefNodes();
  cluster.on?.('node-connect', unrefNodes);
}

/** Rediscovers a cluster's slots, from a node that answers if one does, else from the seed nodes. */
function clusterRecovery(connect: () => Promise<RedisEvalClient>): () => Promise<void> {
  return async () => {
    const cluster = (await connect()) as unknown as ClusterLike;
    const rediscover = cluster._slots?.rediscover;
    if (typeof rediscover !== 'function') return;
    const nodes = [...(cluster.masters ?? []), ...(cluster.replicas ?? [])];
    const start =
      nodes.find((n) => n.client?.isReady)?.client ?? nodes.find((n) => n.client)?.client;
    if (start) await rediscover.call(cluster._slots, start);
  };
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
    const connect = redis && connector(redis);
    const cluster = redis !== undefined && isCluster(redis);
    return {
      keyv,
      redis: connect,
      shared: true,
      close: undefined,
      recover: connect && cluster ? clusterRecovery(connect) : undefined,
      description: redis
        ? cluster
          ? 'the given Redis Cluster Keyv'
          : 'the given Redis Keyv'
        : 'the given Keyv',
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
    const connect = redis && connector(redis);
    const cluster = redis !== undefined && isCluster(redis);
    return {
      keyv,
      redis: connect,
      shared: true,
      close: undefined,
      recover: connect && cluster ? clusterRecovery(connect) : undefined,
      description: redis
        ? cluster
          ? 'the given Redis Cluster store'
          : 'the given Redis store'
        : 'the given Keyv store',
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
    const urls = redisUrls(redisUrl);
    const client = {
      // Fail at once while disconnected: a command queued through an outage would run
      // late, after the kit has moved on (a stale lease or publish).
      disableOfflineQueue: true,
      socket: {
        connectTimeout: STORE_FIRST_CONNECT_MS,
        reconnectStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 1_000),
      },
    };
    const cluster = urls.length > 1;
    const connection = cluster
      ? mod.createCluster({
          rootNodes: urls.map((url) => ({ url })),
          // Nodes found through the seeds get these; the seeds' credentials and TLS apply to all.
          defaults: clusterDefaults(urls, client),
        })
      : { url: urls[0] ?? redisUrl, ...client };
    const store = new mod.default(connection as never, {
      throwOnConnectError: true,
      throwOnErrors: true,
    });
    const keyv = new Keyv(store as never, {
      namespace: undefined,
      throwOnErrors: true,
      ...json,
    }) as unknown as KeyvLike;
    // The kit's own connection must not keep a script or worker alive.
    const connect = connector(store as unknown as KeyvRedisLike, unrefConnection);
    return {
      keyv,
      redis: connect,
      shared: true,
      close: () => store.disconnect(true),
      recover: cluster ? clusterRecovery(connect) : undefined,
      description: cluster ? 'Redis Cluster' : 'Redis',
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
    recover: undefined,
    description: 'the in-memory store',
  };
}

/** Options for every cluster node: the client's, with credentials and TLS from the first seed URL that has them. */
function clusterDefaults<T extends { socket: object }>(
  urls: string[],
  client: T,
): T & { username?: string; password?: string } {
  const out: T & { username?: string; password?: string } = { ...client };
  for (const text of urls) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      continue;
    }
    if (out.password === undefined && url.password) {
      out.password = decodeURIComponent(url.password);
      if (url.username) out.username = decodeURIComponent(url.username);
    }
    if (/^(rediss|valkeys):$/i.test(url.protocol)) out.socket = { ...out.socket, tls: true };
  }
  return out;
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
  constructor(what: string, ms = STORE_TIMEOUT_MS) {
    super(`${what} timed out after ${ms} ms`);
    this.name = 'StoreTimeout';
  }
}

const unref = (timer: unknown) => (timer as { unref?: () => void }).unref?.();

/** What the store's failure means for flags, for the outage message. */
export const FETCH_YOURSELF =
  "flags are evaluated from this process's own definitions, fetched by itself, until the store is back";

/** How long the probe key written after a failed write lives. */
const PROBE_TTL_MS = 10_000;
/** After a probe succeeds, how long the store must keep working before the outage is over. */
export const STORE_RECOVERY_CONFIRM_MS = 3_000;

/** The key's hash tag as Redis Cluster reads it: the text of its first non-empty `{...}`, else the key. */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

/** A key in the same hash slot as `key`, for probes: on a cluster the probe asks the node that failed. */
export function probeKey(key: string): string {
  return `posthog-kit:probe:{${hashTag(key)}}`;
}

export interface GuardedStoreOptions {
  /** Outage key for the error reporter. @default 'flag-cache' */
  outageKey?: string;
  /** What the failure means, ending the outage message. @default {@link FETCH_YOURSELF} */
  consequence?: string;
}

/**
 * Every call the flag caches make to their store goes through here: each has a timeout,
 * a failure (thrown, an `error` event from the store meanwhile, a timeout) is reported once
 * per outage, and while the store is failing calls fail at once, without waiting, until a
 * probe in the background finds it answering again. The probe does what failed: a write
 * after a failed write (Redis at `maxmemory` with `noeviction` still answers reads, so a
 * read would end the outage every second and the next write start it again), on a key in
 * the same hash slot (on a cluster, the node that failed); on a cluster it first asks for
 * the topology again, so a master's failover is found. After a probe succeeds the store is
 * used again, but the outage ends (and is said to) only once the store has kept working for
 * {@link STORE_RECOVERY_CONFIRM_MS} and a last probe succeeds: a failure meanwhile (a Redis
 * hovering at its memory limit takes a small probe, then refuses the next write) is the same
 * outage, not a new one. Nothing here ever rejects.
 */
export class GuardedStore {
  /** The resolved store; undefined when it could not be built (reported once). */
  readonly ready: Promise<ResolvedStore | undefined>;
  /** Called when the store starts or stops failing (for the flags status). */
  onChange: (() => void) | undefined;
  private readonly errors: ErrorReporter;
  private readonly outageKey: string;
  private readonly consequence: string;
  private down = false;
  private closed = false;
  /** Whether a call succeeded once (the first ones may take longer). */
  private answered = false;
  private errorCount = 0;
  private lastError: unknown;
  private failed: StoreTarget | undefined;
  private lastFailure: { message: string; at: number } | undefined;
  private probeTimer: ReturnType<typeof setTimeout> | undefined;
  private confirmTimer: ReturnType<typeof setTimeout> | undefined;
  private resolved: ResolvedStore | undefined;
  private readonly onError = (error: unknown) => {
    this.errorCount++;
    this.lastError = error;
  };

  constructor(
    resolving: Promise<ResolvedStore>,
    errors: ErrorReporter,
    options: GuardedStoreOptions | string = {},
  ) {
    const opts = typeof options === 'string' ? { outageKey: options } : options;
    this.errors = errors;
    this.outageKey = opts.outageKey ?? 'flag-cache';
    this.consequence = opts.consequence ?? FETCH_YOURSELF;
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
        const message = this.errors.clean(describeError(error)).replace(/^\[posthog-kit\] /, '');
        this.lastFailure = { message, at: Date.now() };
        this.errors.background(
          'flag-cache',
          error,
          `flag caches are off: ${describeError(error)}; each process polls flag definitions by itself`,
        );
        return undefined;
      },
    );
  }

  /**
   * What to say a failure is: a timeout while the client reports refused credentials is the
   * credentials (the client keeps reconnecting, so every call times out).
   */
  private cause(error: unknown): string {
    const last = this.lastError === undefined ? '' : describeError(this.lastError);
    if (
      error instanceof StoreTimeout &&
      /WRONGPASS|NOAUTH|invalid (username-)?password/i.test(last)
    ) {
      return `POSTHOG_REDIS_URL: Redis refused the credentials (${last})`;
    }
    return describeError(error);
  }

  /** Whether calls fail at once because the store is failing. */
  get failing(): boolean {
    return this.down;
  }

  /** What the store is, for messages and the status. */
  get description(): string {
    return this.resolved?.description ?? 'the store';
  }

  /** The last failure: its message (secrets removed) and when. */
  get lastFailureInfo(): { message: string; at: number } | undefined {
    return this.lastFailure;
  }

  /**
   * Runs `op` on the store within the timeout. `deadline` tells a multi-step op when to give
   * up between steps, so no step of a timed-out call runs late. `target` says what it
   * touches, so the probe after a failure does the same kind of call to the same slot.
   */
  async run<T>(
    what: string,
    op: (store: ResolvedStore, deadline: number) => Promise<T>,
    target?: StoreTarget,
    probe: 'probe' | 'confirm' | undefined = undefined,
  ): Promise<StoreResult<T>> {
    if (this.closed || (this.down && probe === undefined)) return { ok: false };
    // Building the store happens once and loads modules only (no network): not timed.
    const store = this.resolved ?? (await this.ready);
    if (!store || this.closed) return { ok: false };
    // Until a call has succeeded, one may also take the time to connect on a busy machine.
    const limit = STORE_TIMEOUT_MS + (store.redis && !this.answered ? STORE_FIRST_CONNECT_MS : 0);
    const deadline = Date.now() + limit;
    const errorsBefore = this.errorCount;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      (async () => {
        if (store.redis) {
          // Connect first, so a call that waited for a connection never runs after its deadline.
          await store.redis();
          if (Date.now() > deadline) throw new StoreTimeout(what, limit);
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
          () => resolve({ ok: false, error: new StoreTimeout(what, limit) }),
          limit,
        );
      }),
    ]);
    clearTimeout(timer);
    if (outcome.ok && this.errorCount === errorsBefore) {
      this.answered = true;
      // Only probes end an outage: a call that began before it may still succeed late.
      if (probe === 'probe') this.resume();
      if (probe === 'confirm') this.up();
      return outcome;
    }
    this.fail(outcome.ok ? this.lastError : outcome.error, target);
    return { ok: false };
  }

  /** Stops probing and closes what the kit opened; later calls fail at once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.probeTimer);
    clearTimeout(this.confirmTimer);
    const store = this.resolved;
    if (!store) return;
    store.keyv.off?.('error', this.onError);
    await store.close?.().catch(() => {});
  }

  private fail(error: unknown, target: StoreTarget | undefined): void {
    // A write that failed is what the probe must see succeed, whatever failed since.
    if (target && (!this.down || !this.failed?.write || target.write)) this.failed = target;
    const message = this.errors.clean(describeError(error)).replace(/^\[posthog-kit\] /, '');
    this.lastFailure = { message, at: Date.now() };
    // Said once per outage: a failure while recovering is the same outage, and is silent.
    this.errors.outage(
      this.outageKey,
      error,
      `flag cache (${this.description}) is failing: ${this.cause(error)}; ${this.consequence}`,
    );
    clearTimeout(this.confirmTimer);
    this.confirmTimer = undefined;
    if (this.down) return;
    this.down = true;
    this.scheduleProbe();
    this.onChange?.();
  }

  /** A probe succeeded: calls go through again; the outage ends if it keeps working. */
  private resume(): void {
    if (!this.down) return;
    this.down = false;
    clearTimeout(this.probeTimer);
    clearTimeout(this.confirmTimer);
    this.confirmTimer = setTimeout(() => void this.probe('confirm'), STORE_RECOVERY_CONFIRM_MS);
    unref(this.confirmTimer);
    this.onChange?.();
  }

  /** The store kept working and a last probe succeeded: the outage is over. */
  private up(): void {
    this.confirmTimer = undefined;
    this.failed = undefined;
    if (this.errors.recovered(this.outageKey)) {
      this.errors.warn(`flag cache (${this.description}) answers again`);
    }
    this.onChange?.();
  }

  private scheduleProbe(): void {
    if (this.closed) return;
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => void this.probe('probe'), STORE_RETRY_MS);
    unref(this.probeTimer);
  }

  private async probe(kind: 'probe' | 'confirm'): Promise<void> {
    const target = this.failed ?? { key: 'posthog-kit:probe', write: false };
    const recover = kind === 'probe' ? this.resolved?.recover : undefined;
    if (recover) {
      // Bounded like any call; a failure here is the probe's to find.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        recover().catch(() => {}),
        new Promise((resolve) => {
          timer = setTimeout(resolve, 4 * STORE_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timer);
    }
    if (this.closed || (kind === 'probe' && !this.down)) return;
    if (kind === 'confirm' && (this.down || this.confirmTimer === undefined)) return;
    const key = probeKey(target.key);
    const result = await this.run(
      'probe',
      (s) => (target.write ? s.keyv.set(key, 1, PROBE_TTL_MS) : readKey(s.keyv, target.key)),
      target,
      kind,
    );
    if (!result.ok && this.down) this.scheduleProbe();
  }
}

/** The keys of one host's and one project's shared flag definitions. */
export interface DefinitionKeys {
  /** Short SHA-256 of the host and the project key. */
  scope: string;
  /** `<prefix>:{<scope>}:lock`: the leader's lease. */
  lock: string;
  /** `<prefix>:{<scope>}:data`: the definitions. */
  data: string;
  /** `<prefix>:{<scope>}:stamp`: when the data was last confirmed and a hash of it, small. */
  stamp: string;
}

/**
 * The keys of the shared definitions of a host and project: two hosts with the same
 * project key, or two projects, never share an entry; the lease and the data share a hash
 * tag, so on a Redis Cluster they live in one slot (one node) and fail over together.
 */
export async function definitionKeys(
  prefix: string,
  host: string,
  projectApiKey: string,
): Promise<DefinitionKeys> {
  const scope = (await sha256Hex(`${normalizeHost(host)}\n${projectApiKey}`)).slice(0, 16);
  const at = `${prefix}:{${scope}}`;
  return { scope, lock: `${at}:lock`, data: `${at}:data`, stamp: `${at}:stamp` };
}

/** A host as PostHog sees it: origin (lower case) and path, no trailing slash. */
export function normalizeHost(host: string): string {
  try {
    const url = new URL(host);
    return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  } catch {
    return host.replace(/\/+$/, '');
  }
}

/** SHA-256 as hex, with Web Crypto (no `node:` import). */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  const bytes = new Uint8Array(digest);
  let hex = '';
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0');
  return hex;
}

/** This process as the status and the lease show it: `<hostname>/<pid>`. */
export function processIdentity(): string {
  const proc = (
    globalThis as {
      process?: {
        pid?: number;
        env?: Record<string, string | undefined>;
        getBuiltinModule?: (id: string) => { hostname?: () => string } | undefined;
      };
    }
  ).process;
  let host: string | undefined;
  try {
    host = proc?.getBuiltinModule?.('node:os')?.hostname?.();
  } catch {
    // Not Node: the environment may say.
  }
  host ||= proc?.env?.HOSTNAME;
  return `${host || 'unknown'}/${proc?.pid ?? 0}`;
}

/** A lease owner token: the identity, then a random part that makes it unique. */
export function randomToken(identity = processIdentity()): string {
  return `${identity}/${crypto.randomUUID()}`;
}

/** The identity part of an owner token. */
export function identityOf(token: string): string {
  const at = token.lastIndexOf('/');
  return at > 0 ? token.slice(0, at) : token;
}
