import type { FlagDefinitionCacheData, FlagDefinitionCacheProvider } from 'posthog-node';
import { describeError, type ErrorReporter } from '../errors.ts';
import { KeyvLease, type Lease, type LeaseAttempt, RedisLease } from './lease.ts';
import type { FlagDefinitionsSource, FlagsStatus } from './status.ts';
import {
  type DefinitionKeys,
  definitionKeys,
  GARBAGE,
  type GuardedStore,
  identityOf,
  processIdentity,
  randomToken,
  readKey,
  sha256Hex,
} from './store.ts';

/** The format version of the shared entry; another version is foreign and gets replaced. */
export const DEFINITIONS_FORMAT = 1;
/** How long a new follower waits for the leader's first publish before fetching by itself. */
export const FOLLOWER_COLD_WAIT_MS = 3_000;
const FOLLOWER_COLD_POLL_MS = 50;

/** What is stored under `<prefix>:{<scope>}:data`, as JSON. */
export interface SharedDefinitionsEntry {
  v: typeof DEFINITIONS_FORMAT;
  /** When the leader last confirmed the data with PostHog (a 200, or a 304), ms since epoch. */
  savedAt: number;
  /** Who published it (`<hostname>/<pid>`); absent in entries of older kits. */
  by?: string | undefined;
  /** A hash of `data`, the same as the stamp's; absent in entries of older kits. */
  hash?: string | undefined;
  data: FlagDefinitionCacheData;
}

/**
 * What is stored under `<prefix>:{<scope>}:stamp`: written with every publish, read by
 * every follower at every poll instead of the whole data, which it reads only when the
 * hash differs from what it holds (a follower's poll costs a few dozen bytes, and its
 * local evaluation memo survives polls that change nothing).
 */
export interface SharedDefinitionsStamp {
  v: typeof DEFINITIONS_FORMAT;
  savedAt: number;
  hash: string;
  by?: string | undefined;
}

function parseStamp(value: unknown): SharedDefinitionsStamp | undefined {
  const v = value as Partial<SharedDefinitionsStamp> | null | undefined;
  if (typeof v !== 'object' || v === null || v.v !== DEFINITIONS_FORMAT) return undefined;
  if (typeof v.savedAt !== 'number' || typeof v.hash !== 'string') return undefined;
  if (v.by !== undefined && typeof v.by !== 'string') return undefined;
  return v as SharedDefinitionsStamp;
}

/** The hash the stamp carries: a short SHA-256 of the data's JSON. */
async function hashOf(data: FlagDefinitionCacheData): Promise<string> {
  return (await sha256Hex(JSON.stringify(data))).slice(0, 32);
}

/** Where definitions come from: `poll` fetches them (with the personal key), `store` only reads the shared store. */
export type DefinitionsSourceSetting = 'poll' | 'store';

export interface SharedDefinitionsOptions {
  store: GuardedStore;
  errors: ErrorReporter;
  prefix: string;
  /** PostHog's host: part of the key, with the project. */
  host: string;
  projectApiKey: string;
  pollIntervalMs: number;
  lockTtlMs: number;
  cacheTtlMs: number;
  /** `store`: this process has no personal key and reads the store only. @default 'poll' */
  source?: DefinitionsSourceSetting | undefined;
  /** Store-only: definitions older than this are not used. @default cacheTtlMs */
  maxAgeMs?: number | undefined;
  /** Called when the status changes. */
  onChange?: (() => void) | undefined;
}

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

/** The entry when it is ours and usable; anything else (corrupt, foreign, another version) is not. */
export function parseEntry(value: unknown): SharedDefinitionsEntry | undefined {
  if (!isObject(value) || value.v !== DEFINITIONS_FORMAT || typeof value.savedAt !== 'number') {
    return undefined;
  }
  if (value.by !== undefined && typeof value.by !== 'string') return undefined;
  if (value.hash !== undefined && typeof value.hash !== 'string') return undefined;
  const data = value.data;
  if (!isObject(data) || !Array.isArray(data.flags) || !isObject(data.cohorts)) return undefined;
  const mapping = data.group_type_mapping ?? data.groupTypeMapping ?? {};
  if (!isObject(mapping)) return undefined;
  for (const flag of data.flags) {
    if (!isObject(flag) || typeof flag.key !== 'string') return undefined;
  }
  return value as unknown as SharedDefinitionsEntry;
}

/** No definitions: what posthog-node is given to evaluate as it does without any. */
function noDefinitions(): FlagDefinitionCacheData {
  return { flags: [], group_type_mapping: {}, groupTypeMapping: {}, cohorts: {} };
}

const unref = (timer: unknown) => (timer as { unref?: () => void }).unref?.();
// Awaited by a load a caller waits for: a plain timer, so a script does not exit meanwhile.
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;

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
 * posthog-node's `FlagDefinitionCacheProvider` on any Keyv store: one leader per prefix,
 * host and project fetches flag definitions from PostHog and publishes them; every other
 * process reads them. posthog-node calls, on every load (start, each poll):
 * `shouldFetchFlagDefinitions()`; on false, `getFlagDefinitions()`; on true, it fetches
 * and calls `onFlagDefinitionsReceived(data)` after a 200 (nothing after a 304); and
 * `shutdown()` when the client stops. Without a personal key (posthog-node 5.70+) it only
 * calls `getFlagDefinitions()`: a cache-only reader, which is the `store` source.
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
 * - A new process that leads at once starts from the shared copy when there is one (so
 *   its first answer needs no PostHog, even while PostHog is down) and fetches right
 *   after when the copy is older than a poll.
 * - Store-only (`source: 'store'`): reads, never fetches, never leads. A copy missing, or
 *   older than `maxAgeMs` (the relay stopped confirming it), is said once and not used:
 *   posthog-node then answers as it does without definitions.
 * - The store failing (down, slow, garbage) means "fetch yourself" (store-only: "keep
 *   what you have, up to the max age"), and nothing is thrown.
 */
export class SharedFlagDefinitions implements FlagDefinitionCacheProvider {
  /** This process, as the lease and the status show it. */
  readonly identity: string = processIdentity();
  readonly token: string = randomToken(this.identity);
  /** Whether this process leads (fetches and publishes). */
  leader = false;
  private readonly options: SharedDefinitionsOptions;
  private readonly store: GuardedStore;
  private readonly storeOnly: boolean;
  private readonly maxAgeMs: number;
  private readonly ready: Promise<(DefinitionKeys & { lease: Lease }) | undefined>;
  /** What posthog-node holds in memory, when the kit knows it. */
  private held: FlagDefinitionCacheData | undefined;
  /** The hash of `held`, once known (compared with the stamp's). */
  private heldHash: string | undefined;
  /** Whether posthog-node's ETag belongs to `held` (it came from a 200 this process saw). */
  private etagMatchesHeld = false;
  /** How the current load goes: as the leader, on its own (store failing), or reading. */
  private mode: 'leader' | 'solo' | 'reader' = 'solo';
  private loadedOnce = false;
  private stash: SharedDefinitionsEntry | undefined;
  /** The stash is older than a poll: fetch right after handing it over. */
  private refreshAfterStash = false;
  private renewTimer: ReturnType<typeof setInterval> | undefined;
  /** When this process last renewed (or took) the lease. */
  private renewedAt = 0;
  private takeoverTimer: ReturnType<typeof setTimeout> | undefined;
  private reload: (() => Promise<void>) | undefined;
  private stopped = false;
  private readonly pending = new Set<Promise<unknown>>();
  // The status: where `held` came from, when PostHog confirmed it, who leads, what failed.
  private origin: Exclude<FlagDefinitionsSource, 'none'> | undefined;
  private confirmedAt: number | undefined;
  private leaderIdentity: string | undefined;
  private stale = false;
  private lastError: { message: string; at: number } | undefined;

  constructor(options: SharedDefinitionsOptions) {
    this.options = options;
    this.store = options.store;
    this.storeOnly = options.source === 'store';
    this.maxAgeMs = options.maxAgeMs ?? options.cacheTtlMs;
    this.ready = Promise.all([
      this.store.ready,
      definitionKeys(options.prefix, options.host, options.projectApiKey),
    ]).then(([store, keys]) => {
      if (!store) return undefined;
      const make = store.redis ? RedisLease : KeyvLease;
      return { ...keys, lease: new make(this.store, keys.lock, this.token, options.lockTtlMs) };
    });
  }

  /** The keys and the lease; resolves once the store is built. @internal */
  get keys(): Promise<(DefinitionKeys & { lease: Lease }) | undefined> {
    return this.ready;
  }

  /** Lets the provider start a load when it takes over between polls. */
  attach(reload: () => Promise<void>): void {
    this.reload = reload;
  }

  /** Where the definitions in use came from, their age, the leader, the last error. */
  status(): Omit<FlagsStatus, 'store'> {
    const now = Date.now();
    const lastError = [this.lastError, this.store.lastFailureInfo]
      .filter((e): e is { message: string; at: number } => e !== undefined)
      .sort((a, b) => b.at - a.at)[0];
    return {
      mode: this.storeOnly ? 'store' : 'poll',
      source: this.origin ?? 'none',
      confirmedAt: this.confirmedAt,
      ageMs: this.confirmedAt === undefined ? undefined : Math.max(0, now - this.confirmedAt),
      flagCount: this.origin ? (this.held?.flags.length ?? 0) : 0,
      stale: this.stale,
      identity: this.identity,
      leader: this.leader,
      leaderIdentity: this.leader ? this.identity : this.leaderIdentity,
      lastError,
    };
  }

  async shouldFetchFlagDefinitions(): Promise<boolean> {
    // Store-only never fetches; posthog-node 5.70+ does not even ask a reader without a key.
    if (this.storeOnly) return false;
    if (this.stopped) return true;
    const attempt = await this.acquire();
    if (!attempt) {
      this.mode = 'solo';
      return true;
    }
    if (!attempt.held) {
      this.follow(attempt);
      this.mode = 'reader';
      return false;
    }
    this.lead();
    if (attempt.acquired && !this.loadedOnce) {
      // A new process that leads at once starts from the shared copy: its first answers
      // need nothing from PostHog (which may be down). Older than a poll: fetch right after.
      const entry = await this.read();
      if (entry) {
        this.stash = entry;
        this.refreshAfterStash = Date.now() - entry.savedAt >= this.options.pollIntervalMs;
        this.mode = 'reader';
        return false;
      }
    }
    this.mode = 'leader';
    return true;
  }

  async getFlagDefinitions(): Promise<FlagDefinitionCacheData | undefined> {
    if (this.storeOnly) return this.readOnly();
    const stash = this.stash;
    this.stash = undefined;
    if (stash) {
      if (this.refreshAfterStash) {
        this.refreshAfterStash = false;
        // After this load has handed the copy over: posthog-node joins a reload to a load in progress.
        unref(setTimeout(() => void this.reload?.().catch(() => {}), 0));
      }
      return this.adopt(stash);
    }
    const shared = await this.readShared();
    // Nothing new: posthog-node keeps what it holds (and its memo what it remembers).
    if (shared.unchanged) return this.touch(shared.unchanged);
    let entry = shared.entry;
    if (!entry && !this.loadedOnce && this.mode === 'reader') entry = await this.waitForLeader();
    return entry ? this.adopt(entry) : undefined;
  }

  onFlagDefinitionsReceived(data: FlagDefinitionCacheData): void {
    this.held = data;
    this.heldHash = undefined;
    this.etagMatchesHeld = true;
    this.loadedOnce = true;
    this.confirm(this.mode === 'leader' ? 'leader' : 'own-fetch');
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
      let res: Response;
      try {
        res = await inner(input, asLeader && !canConfirm ? withoutEtag(init) : init);
      } catch (error) {
        this.failed(`flag definitions request failed: ${describeError(error)}`);
        throw error;
      }
      if (res.status === 304) {
        if (canConfirm && this.held) this.track(this.publish(this.held));
        if (this.etagMatchesHeld) this.confirm(this.origin ?? 'own-fetch');
      } else if (res.ok && this.mode === 'reader') {
        // Fetched by itself (nothing shared yet): posthog-node does not publish this one.
        this.held = undefined;
        this.heldHash = undefined;
        this.etagMatchesHeld = false;
        this.loadedOnce = true;
        this.origin = 'own-fetch';
        this.confirmedAt = Date.now();
        this.changed();
      } else if (!res.ok) {
        this.failed(`flag definitions request: HTTP ${res.status}`);
      }
      return res;
    };
  }

  /** Store-only: the shared copy if it is fresh enough; else keep ours while young, else none. */
  private async readOnly(): Promise<FlagDefinitionCacheData | undefined> {
    const ready = await this.ready;
    const shared = await this.readShared();
    let entry = shared.entry;
    if (!entry && !shared.unchanged && !this.loadedOnce && !this.store.failing) {
      entry = await this.waitForLeader();
    }
    const now = Date.now();
    const savedAt = shared.unchanged?.savedAt ?? entry?.savedAt;
    if (savedAt !== undefined && now - savedAt <= this.maxAgeMs) {
      if (this.stale) {
        this.stale = false;
        if (this.options.errors.recovered('flag-definitions:stale')) {
          this.options.errors.warn(
            `shared flag definitions are fresh again (${seconds(now - savedAt)} old): flags are evaluated locally from them`,
          );
        }
      }
      if (shared.unchanged) return this.touch(shared.unchanged);
      if (entry) return this.adopt(entry);
    }
    // Nothing fresh in the store: what this process holds still serves while young enough.
    if (this.origin && this.confirmedAt !== undefined && now - this.confirmedAt <= this.maxAgeMs) {
      return undefined;
    }
    const where = ready ? `under "${ready.data}"` : 'in the store';
    const why =
      savedAt !== undefined
        ? `shared flag definitions ${where} are ${seconds(now - savedAt)} old, past the max age (POSTHOG_FLAG_DEFINITIONS_MAX_AGE, ${seconds(this.maxAgeMs)}): nothing keeps them fresh`
        : this.store.failing
          ? `the flag definitions store is failing and the definitions this process holds are past the max age (POSTHOG_FLAG_DEFINITIONS_MAX_AGE, ${seconds(this.maxAgeMs)})`
          : `no shared flag definitions ${where}: nothing has published them`;
    this.stale = true;
    this.failed(why);
    this.options.errors.outage(
      'flag-definitions:stale',
      undefined,
      `${why}; flags are evaluated as posthog-node does without definitions (remotely, or undefined with onlyEvaluateLocally) until a relay (posthog-kit-relay) or a kit with the personal key publishes them`,
    );
    if (this.origin === undefined && this.loadedOnce) return undefined;
    // Handing posthog-node an empty set drops what it holds: it then asks PostHog, as without definitions.
    this.held = noDefinitions();
    this.heldHash = undefined;
    this.origin = undefined;
    this.confirmedAt = undefined;
    this.loadedOnce = true;
    this.changed();
    return this.held;
  }

  private adopt(entry: SharedDefinitionsEntry): FlagDefinitionCacheData {
    this.held = entry.data;
    this.heldHash = entry.hash;
    this.etagMatchesHeld = false;
    this.loadedOnce = true;
    this.origin = 'shared-store';
    this.confirmedAt = entry.savedAt;
    if (entry.by !== undefined) this.leaderIdentity = entry.by;
    this.changed();
    return entry.data;
  }

  /** The stamp says the leader confirmed what this process holds: nothing to load. */
  private touch(stamp: SharedDefinitionsStamp): undefined {
    this.origin = 'shared-store';
    this.confirmedAt = stamp.savedAt;
    if (stamp.by !== undefined) this.leaderIdentity = stamp.by;
    this.loadedOnce = true;
    this.changed();
    return undefined;
  }

  private confirm(origin: Exclude<FlagDefinitionsSource, 'none'>): void {
    this.origin = origin;
    this.confirmedAt = Date.now();
    this.changed();
  }

  private failed(message: string): void {
    const clean = this.options.errors.clean(message).replace(/^\[posthog-kit\] /, '');
    this.lastError = { message: clean, at: Date.now() };
    this.changed();
  }

  private changed(): void {
    this.options.onChange?.();
  }

  private async acquire(): Promise<LeaseAttempt | undefined> {
    const ready = await this.ready;
    const startedAt = Date.now();
    const attempt = ready ? await ready.lease.acquire() : undefined;
    if (attempt?.held) this.renewedAt = startedAt;
    return attempt;
  }

  /** The stamp when it matches what this process holds, else the data (each read once). */
  private async readShared(): Promise<{
    entry?: SharedDefinitionsEntry | undefined;
    unchanged?: SharedDefinitionsStamp | undefined;
  }> {
    const ready = await this.ready;
    if (!ready) return {};
    if (this.heldHash !== undefined) {
      const result = await this.store.run('read stamp', (s) => readKey(s.keyv, ready.stamp), {
        key: ready.stamp,
        write: false,
      });
      if (!result.ok) return {};
      const stamp = parseStamp(result.value);
      if (stamp?.hash === this.heldHash) return { unchanged: stamp };
    }
    return { entry: await this.read() };
  }

  private async read(): Promise<SharedDefinitionsEntry | undefined> {
    const ready = await this.ready;
    if (!ready) return undefined;
    const result = await this.store.run('read definitions', (s) => readKey(s.keyv, ready.data), {
      key: ready.data,
      write: false,
    });
    if (!result.ok || result.value === undefined || result.value === null) return undefined;
    const entry = parseEntry(result.value);
    if (entry) {
      if (this.options.errors.recovered('flag-cache:definitions-data')) {
        this.options.errors.warn('shared flag definitions are readable again');
      }
      return entry;
    }
    const what = `shared flag definitions under "${ready.data}" are ${result.value === GARBAGE ? 'not JSON' : 'not in the expected format'}`;
    this.failed(what);
    this.options.errors.outage(
      'flag-cache:definitions-data',
      undefined,
      `${what}; ignored (the leader replaces them), each process keeps the definitions it has`,
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
    const hash = this.held === data && this.heldHash ? this.heldHash : await hashOf(data);
    if (this.held === data) this.heldHash = hash;
    const savedAt = Date.now();
    const entry: SharedDefinitionsEntry = {
      v: DEFINITIONS_FORMAT,
      savedAt,
      by: this.identity,
      hash,
      data,
    };
    const stamp: SharedDefinitionsStamp = {
      v: DEFINITIONS_FORMAT,
      savedAt,
      hash,
      by: this.identity,
    };
    const ttl = this.options.cacheTtlMs;
    // The data first: a follower that sees the new stamp finds the new data.
    await this.store.run(
      'publish definitions',
      async (s, deadline) => {
        await s.keyv.set(ready.data, entry, ttl);
        // Out of time: the next publish writes the stamp (followers read new data a poll later).
        if (Date.now() <= deadline) await s.keyv.set(ready.stamp, stamp, ttl);
      },
      { key: ready.data, write: true },
    );
  }

  private track(promise: Promise<unknown>): void {
    this.pending.add(promise);
    void promise.finally(() => this.pending.delete(promise));
  }

  private lead(): void {
    if (!this.leader) {
      this.leader = true;
      this.changed();
    }
    clearTimeout(this.takeoverTimer);
    this.takeoverTimer = undefined;
    if (this.renewTimer || this.stopped) return;
    const every = Math.max(100, Math.floor(this.options.lockTtlMs / 3));
    this.renewTimer = setInterval(() => {
      // Polls renew it when they come often enough; the timer covers posthog-node's back-off
      // (after a 401 or 429), and renewing after the last fetch would only delay a takeover.
      if (Date.now() - this.renewedAt < every) return;
      void this.acquire().then((attempt) => {
        if (attempt && !attempt.held) this.follow(attempt);
      });
    }, every);
    unref(this.renewTimer);
  }

  private follow(attempt: LeaseAttempt): void {
    const owner = attempt.owner && identityOf(attempt.owner);
    if (this.leader || (owner && owner !== this.leaderIdentity)) {
      this.leader = false;
      if (owner) this.leaderIdentity = owner;
      this.changed();
    }
    clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    clearTimeout(this.takeoverTimer);
    this.takeoverTimer = undefined;
    if (this.stopped || attempt.retryInMs === undefined) return;
    // A little after the owner's lease would end; the jitter spreads the followers out.
    this.takeoverTimer = setTimeout(
      () => {
        this.takeoverTimer = undefined;
        void this.acquire().then((next) => {
          if (!next || this.stopped) return;
          if (!next.held) return this.follow(next);
          this.lead();
          // Fetch and publish now rather than at this process's next poll.
          void this.reload?.().catch(() => {});
        });
      },
      attempt.retryInMs + 10 + Math.floor(Math.random() * 90),
    );
    unref(this.takeoverTimer);
  }
}
