import type { FlagDefinitionCacheData, FlagDefinitionCacheProvider } from 'posthog-node';
import type { ErrorReporter } from '../errors.ts';
import { KeyvLease, type Lease, type LeaseAttempt, RedisLease } from './lease.ts';
import { GARBAGE, type GuardedStore, projectScope, randomToken, readKey } from './store.ts';

/** The format version of the shared entry; another version is foreign and gets replaced. */
export const DEFINITIONS_FORMAT = 1;
/** How long a new follower waits for the leader's first publish before fetching by itself. */
export const FOLLOWER_COLD_WAIT_MS = 3_000;
const FOLLOWER_COLD_POLL_MS = 50;

/** What is stored under `<prefix>:<project>:data`, as JSON. */
export interface SharedDefinitionsEntry {
  v: typeof DEFINITIONS_FORMAT;
  /** When the leader last confirmed the data with PostHog (a 200, or a 304), ms since epoch. */
  savedAt: number;
  data: FlagDefinitionCacheData;
}

export interface SharedDefinitionsOptions {
  store: GuardedStore;
  errors: ErrorReporter;
  prefix: string;
  projectApiKey: string;
  pollIntervalMs: number;
  lockTtlMs: number;
  cacheTtlMs: number;
}

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

/** The entry when it is ours and usable; anything else (corrupt, foreign, another version) is not. */
export function parseEntry(value: unknown): SharedDefinitionsEntry | undefined {
  if (!isObject(value) || value.v !== DEFINITIONS_FORMAT || typeof value.savedAt !== 'number') {
    return undefined;
  }
  const data = value.data;
  if (!isObject(data) || !Array.isArray(data.flags) || !isObject(data.cohorts)) return undefined;
  const mapping = data.group_type_mapping ?? data.groupTypeMapping ?? {};
  if (!isObject(mapping)) return undefined;
  for (const flag of data.flags) {
    if (!isObject(flag) || typeof flag.key !== 'string') return undefined;
  }
  return value as unknown as SharedDefinitionsEntry;
}

const unref = (timer: unknown) => (timer as { unref?: () => void }).unref?.();
// Awaited by a load a caller waits for: a plain timer, so a script does not exit meanwhile.
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function isDefinitionsRequest(input: Parameters<typeof fetch>[0]): boolean {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  return url.includes('/flags/definitions');
}

function withoutEtag(init: RequestInit | undefined): RequestInit | undefined {
  if (!init?.headers) return init;
  const headers = new Headers(init.headers);
  headers.delete('If-None-Match');
  return { ...init, headers };
}

/**
 * posthog-node's `FlagDefinitionCacheProvider` on any Keyv store: one leader per prefix
 * (and project) fetches flag definitions from PostHog and publishes them; every other
 * process reads them. posthog-node calls, on every load (start, each poll):
 * `shouldFetchFlagDefinitions()`; on false, `getFlagDefinitions()`; on true, it fetches
 * and calls `onFlagDefinitionsReceived(data)` after a 200 (nothing after a 304); and
 * `shutdown()` when the client stops.
 *
 * - The lease (owner token, TTL `lockTtlMs`) is renewed by the leader on its own timer
 *   and at each poll, and released only by its owner at shutdown. A follower retries
 *   when the owner's lease would end, so it takes over within one lease TTL of the
 *   leader's last renewal, and fetches at once.
 * - A 304 does not reach the provider, so the kit's fetch tells it: the leader then
 *   writes its copy again with a new `savedAt` and TTL. The shared copy stays alive
 *   while the leader confirms it; the TTL only ends a copy nobody confirms.
 * - A leader whose in-memory definitions did not come from its own last 200 (it read
 *   them from the cache, or fetched without publishing) drops the ETag once, so its
 *   first fetch is a full answer it can publish.
 * - The store failing (down, slow, garbage) means "fetch yourself": this process polls
 *   PostHog on its own until the store answers again, and nothing is thrown.
 */
export class SharedFlagDefinitions implements FlagDefinitionCacheProvider {
  readonly token: string = randomToken();
  /** Whether this process leads (fetches and publishes). */
  leader = false;
  private readonly options: SharedDefinitionsOptions;
  private readonly store: GuardedStore;
  private readonly ready: Promise<{ data: string; lease: Lease } | undefined>;
  /** What posthog-node holds in memory, when the kit knows it. */
  private held: FlagDefinitionCacheData | undefined;
  /** Whether posthog-node's ETag belongs to `held` (it came from a 200 this process saw). */
  private etagMatchesHeld = false;
  /** How the current load goes: as the leader, on its own (store failing), or reading. */
  private mode: 'leader' | 'solo' | 'reader' = 'solo';
  private loadedOnce = false;
  private stash: FlagDefinitionCacheData | undefined;
  private renewTimer: ReturnType<typeof setInterval> | undefined;
  private takeoverTimer: ReturnType<typeof setTimeout> | undefined;
  private reload: (() => Promise<void>) | undefined;
  private stopped = false;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(options: SharedDefinitionsOptions) {
    this.options = options;
    this.store = options.store;
    this.ready = Promise.all([
      this.store.ready,
      projectScope(options.prefix, options.projectApiKey),
    ]).then(([store, scope]) => {
      if (!store) return undefined;
      const make = store.redis ? RedisLease : KeyvLease;
      return {
        data: `${scope}:data`,
        lease: new make(this.store, `${scope}:lock`, this.token, options.lockTtlMs),
      };
    });
  }

  /** The keys and the lease; resolves once the store is built. @internal */
  get keys(): Promise<{ data: string; lease: Lease } | undefined> {
    return this.ready;
  }

  /** Lets the provider start a load when it takes over between polls. */
  attach(reload: () => Promise<void>): void {
    this.reload = reload;
  }

  async shouldFetchFlagDefinitions(): Promise<boolean> {
    if (this.stopped) return true;
    const attempt = await this.acquire();
    if (!attempt) {
      this.mode = 'solo';
      return true;
    }
    if (!attempt.held) {
      this.follow(attempt.retryInMs);
      this.mode = 'reader';
      return false;
    }
    this.lead();
    if (attempt.acquired && !this.loadedOnce) {
      // A new process that leads at once: a shared copy confirmed within the poll
      // interval is as good as a fetch, and saves one.
      const entry = await this.read();
      if (entry && Date.now() - entry.savedAt < this.options.pollIntervalMs) {
        this.stash = entry.data;
        this.mode = 'reader';
        return false;
      }
    }
    this.mode = 'leader';
    return true;
  }

  async getFlagDefinitions(): Promise<FlagDefinitionCacheData | undefined> {
    const stash = this.stash;
    this.stash = undefined;
    if (stash) return this.adopt(stash);
    let entry = await this.read();
    if (!entry && !this.loadedOnce && this.mode === 'reader') entry = await this.waitForLeader();
    return entry ? this.adopt(entry.data) : undefined;
  }

  onFlagDefinitionsReceived(data: FlagDefinitionCacheData): void {
    this.held = data;
    this.etagMatchesHeld = true;
    this.loadedOnce = true;
    // Not awaited: posthog-node's first evaluation waits for this load.
    if (this.mode === 'leader') this.track(this.publish(data));
  }

  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.renewTimer);
    clearTimeout(this.takeoverTimer);
    const wasLeader = this.leader;
    this.leader = false;
    if (wasLeader) await (await this.ready)?.lease.release();
  }

  /** Settles when every publish started so far is done (each is bounded by the store timeout). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  /**
   * posthog-node's fetch, watched for the definitions endpoint: the leader's 304 keeps
   * the shared copy alive, the ETag is dropped when the leader must publish a full copy,
   * and a fetch a reader made by itself marks its in-memory copy as unknown.
   */
  wrapFetch(inner: typeof fetch): typeof fetch {
    return async (input, init) => {
      if (!isDefinitionsRequest(input)) return inner(input, init);
      const asLeader = this.mode === 'leader';
      const canConfirm = asLeader && this.held !== undefined && this.etagMatchesHeld;
      const res = await inner(input, asLeader && !canConfirm ? withoutEtag(init) : init);
      if (res.status === 304) {
        if (canConfirm && this.held) this.track(this.publish(this.held));
      } else if (res.ok && this.mode === 'reader') {
        // Fetched by itself (nothing shared yet): posthog-node does not publish this one.
        this.held = undefined;
        this.etagMatchesHeld = false;
        this.loadedOnce = true;
      }
      return res;
    };
  }

  private adopt(data: FlagDefinitionCacheData): FlagDefinitionCacheData {
    this.held = data;
    this.etagMatchesHeld = false;
    this.loadedOnce = true;
    return data;
  }

  private async acquire(): Promise<LeaseAttempt | undefined> {
    const ready = await this.ready;
    return ready ? ready.lease.acquire() : undefined;
  }

  private async read(): Promise<SharedDefinitionsEntry | undefined> {
    const ready = await this.ready;
    if (!ready) return undefined;
    const result = await this.store.run('read definitions', (s) => readKey(s.keyv, ready.data));
    if (!result.ok || result.value === undefined || result.value === null) return undefined;
    const entry = parseEntry(result.value);
    if (entry) {
      if (this.options.errors.recovered('flag-cache:definitions-data')) {
        this.options.errors.warn('shared flag definitions are readable again');
      }
      return entry;
    }
    this.options.errors.outage(
      'flag-cache:definitions-data',
      undefined,
      `shared flag definitions under "${ready.data}" are ${result.value === GARBAGE ? 'not JSON' : 'not in the expected format'}; ignored (the leader replaces them), each process keeps the definitions it has`,
    );
    return undefined;
  }

  private async waitForLeader(): Promise<SharedDefinitionsEntry | undefined> {
    const deadline = Date.now() + Math.min(FOLLOWER_COLD_WAIT_MS, this.options.lockTtlMs);
    while (Date.now() < deadline && !this.stopped && !this.store.failing) {
      await sleep(FOLLOWER_COLD_POLL_MS);
      const entry = await this.read();
      if (entry) return entry;
    }
    return undefined;
  }

  private async publish(data: FlagDefinitionCacheData): Promise<void> {
    const ready = await this.ready;
    if (!ready || !this.leader) return;
    const entry: SharedDefinitionsEntry = { v: DEFINITIONS_FORMAT, savedAt: Date.now(), data };
    await this.store.run('publish definitions', (s) =>
      s.keyv.set(ready.data, entry, this.options.cacheTtlMs),
    );
  }

  private track(promise: Promise<unknown>): void {
    this.pending.add(promise);
    void promise.finally(() => this.pending.delete(promise));
  }

  private lead(): void {
    this.leader = true;
    clearTimeout(this.takeoverTimer);
    this.takeoverTimer = undefined;
    if (this.renewTimer || this.stopped) return;
    const every = Math.max(100, Math.floor(this.options.lockTtlMs / 3));
    this.renewTimer = setInterval(() => {
      void this.acquire().then((attempt) => {
        if (attempt && !attempt.held) this.follow(attempt.retryInMs);
      });
    }, every);
    unref(this.renewTimer);
  }

  private follow(retryInMs: number | undefined): void {
    this.leader = false;
    clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    clearTimeout(this.takeoverTimer);
    this.takeoverTimer = undefined;
    if (this.stopped || retryInMs === undefined) return;
    // A little after the owner's lease would end; the jitter spreads the followers out.
    this.takeoverTimer = setTimeout(
      () => {
        this.takeoverTimer = undefined;
        void this.acquire().then((attempt) => {
          if (!attempt || this.stopped) return;
          if (!attempt.held) return this.follow(attempt.retryInMs);
          this.lead();
          // Fetch and publish now rather than at this process's next poll.
          void this.reload?.().catch(() => {});
        });
      },
      retryInMs + 10 + Math.floor(Math.random() * 90),
    );
    unref(this.takeoverTimer);
  }
}
