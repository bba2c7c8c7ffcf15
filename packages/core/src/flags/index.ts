import type { ErrorReporter } from '../errors.ts';
import type { ResolvedSettings } from '../settings.ts';
import { SharedFlagDefinitions } from './definitions-cache.ts';
import { LocalEvaluationMemo } from './memo.ts';
import {
  canReplayFlagCalls,
  type FlagAnswer,
  type FlagInputs,
  FlagRecordingPostHog,
  type FlagRequest,
  FlagResultCache,
} from './result-cache.ts';
import { type FlagsStatus, isHealthy, StatusNotifier } from './status.ts';
import {
  FETCH_YOURSELF,
  GuardedStore,
  isSharedStore,
  processIdentity,
  resolveStore,
} from './store.ts';

export type { FlagDefinitionsSource, FlagsStatus } from './status.ts';
export { redisSecrets, redisUrls, STORE_TIMEOUT_MS } from './store.ts';
export { type FlagAnswer, type FlagInputs, FlagRecordingPostHog, type FlagRequest, isHealthy };

const STORE_ONLY_FAILING =
  'flags are evaluated from the definitions this process holds until the store is back (past POSTHOG_FLAG_DEFINITIONS_MAX_AGE: as posthog-node does without definitions)';

/** posthog-node polling by itself, watched for the status: when PostHog last answered, what failed. */
class OwnFetchWatch {
  confirmedAt: number | undefined;
  flagCount = 0;
  lastError: { message: string; at: number } | undefined;
  private readonly onChange: () => void;

  constructor(onChange: () => void) {
    this.onChange = onChange;
  }

  wrap(inner: typeof fetch): typeof fetch {
    return async (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      if (!url.includes('/flags/definitions')) return inner(input, init);
      try {
        const res = await inner(input, init);
        if (res.ok || res.status === 304) this.confirmedAt = Date.now();
        else
          this.lastError = {
            message: `flag definitions request: HTTP ${res.status}`,
            at: Date.now(),
          };
        this.onChange();
        return res;
      } catch (error) {
        this.lastError = { message: 'flag definitions request failed', at: Date.now() };
        this.onChange();
        throw error;
      }
    };
  }
}

/**
 * The kit's flag caches: the shared flag definitions (a posthog-node
 * `FlagDefinitionCacheProvider`, with a personal key and a store other processes can
 * reach: `cache` or `redisUrl`), the flag result cache (when its TTL is above 0), both
 * on one store, and the in-process memo of local evaluations (with a personal key).
 * None of it exists when none is wanted.
 */
export class FlagCaches {
  readonly store: GuardedStore | undefined;
  readonly definitions: SharedFlagDefinitions | undefined;
  readonly results: FlagResultCache | undefined;
  readonly memo: LocalEvaluationMemo | undefined;
  /**
   * The key posthog-node gets as `secretKey`: the personal key, except store-only, where
   * posthog-node must be a cache-only reader and never request definitions.
   */
  readonly secretKey: string | undefined;
  private readonly sendEventsByDefault: boolean;
  private readonly notifier: StatusNotifier;
  private readonly mode: 'poll' | 'store';
  private readonly ownFetch: OwnFetchWatch | undefined;

  private constructor(
    parts: Pick<FlagCaches, 'store' | 'definitions' | 'results' | 'memo' | 'secretKey'>,
    more: {
      sendEventsByDefault: boolean;
      notifier: StatusNotifier;
      mode: 'poll' | 'store';
      ownFetch: OwnFetchWatch | undefined;
    },
  ) {
    this.store = parts.store;
    this.definitions = parts.definitions;
    this.results = parts.results;
    this.memo = parts.memo;
    this.secretKey = parts.secretKey;
    this.sendEventsByDefault = more.sendEventsByDefault;
    this.notifier = more.notifier;
    this.mode = more.mode;
    this.ownFetch = more.ownFetch;
  }

  /** Where the definitions in use came from, their age, the leader, the last error. */
  status(): FlagsStatus {
    return flagsStatus(this, this.mode, this.ownFetch);
  }

  /**
   * Calls `listener` with the status whenever it changes (a load, a leader, the store, an
   * error). Returns an unsubscribe.
   */
  onStatus(listener: (status: FlagsStatus) => void): () => void {
    return this.notifier.add(() => listener(this.status()));
  }

  /** The caches the settings ask for, or undefined when they ask for none. */
  static create(
    settings: ResolvedSettings,
    cache: unknown,
    errors: ErrorReporter,
    clientOptions?: Record<string, unknown>,
  ): FlagCaches | undefined {
    const apiKey = settings.apiKey;
    if (apiKey === undefined) return undefined;
    const storeOnly = settings.flagDefinitionsSource === 'store';
    const shared = isSharedStore(cache, settings.redisUrl);
    if (storeOnly && !shared) {
      errors.warn(
        'POSTHOG_FLAG_DEFINITIONS_SOURCE=store needs a store other processes share (POSTHOG_REDIS_URL or the cache option): there are no definitions, flags are evaluated as posthog-node does without them (remotely)',
      );
    }
    if (storeOnly && settings.personalApiKey !== undefined) {
      errors.warn(
        'POSTHOG_FLAG_DEFINITIONS_SOURCE=store: this process never fetches flag definitions, so POSTHOG_PERSONAL_API_KEY is not used for them; remove it here (keep it on the relay)',
      );
    }
    // Local evaluation: with the personal key, or from the store alone.
    const local = settings.personalApiKey !== undefined || storeOnly;
    // The default in-memory store shares nothing: posthog-node polling alone is the same, for less.
    const shareDefinitions = local && shared;
    let cacheResults = settings.featureFlagsCacheTtlMs > 0;
    if (cacheResults && !canReplayFlagCalls()) {
      errors.warn(
        'POSTHOG_FEATURE_FLAGS_CACHE_TTL: this posthog-node has no _captureFlagCalledEventIfNeeded, so cached answers could not record $feature_flag_called; the flag result cache is off',
      );
      cacheResults = false;
    }
    const memoize = local && canReplayFlagCalls();
    if (!shareDefinitions && !cacheResults && !memoize && !storeOnly) return undefined;
    // posthog-node's client-wide default for `$feature_flag_called`.
    const sendEventsByDefault = clientOptions?.sendFeatureFlagEvent !== false;
    const notifier = new StatusNotifier();
    const onChange = () => notifier.notify();
    const store =
      shareDefinitions || cacheResults
        ? new GuardedStore(resolveStore(cache, settings.redisUrl), errors, {
            consequence: storeOnly ? STORE_ONLY_FAILING : FETCH_YOURSELF,
          })
        : undefined;
    if (store) store.onChange = onChange;
    const definitions =
      store && shareDefinitions
        ? new SharedFlagDefinitions({
            store,
            errors,
            prefix: settings.flagDefinitionsCachePrefix,
            host: settings.host,
            projectApiKey: apiKey,
            pollIntervalMs: settings.pollIntervalMs,
            lockTtlMs: settings.flagDefinitionsLockTtlMs,
            cacheTtlMs: settings.flagDefinitionsCacheTtlMs,
            source: settings.flagDefinitionsSource,
            maxAgeMs: settings.flagDefinitionsMaxAgeMs,
            onChange,
          })
        : undefined;
    const results =
      store && cacheResults
        ? new FlagResultCache(store, {
            prefix: settings.featureFlagsCachePrefix,
            ttlMs: settings.featureFlagsCacheTtlMs,
            host: settings.host,
            projectApiKey: apiKey,
          })
        : undefined;
    const memo = memoize
      ? new LocalEvaluationMemo({ maxAgeMs: settings.pollIntervalMs })
      : undefined;
    const ownFetch =
      !definitions && settings.personalApiKey !== undefined && !storeOnly
        ? new OwnFetchWatch(onChange)
        : undefined;
    return new FlagCaches(
      {
        store,
        definitions,
        results,
        memo,
        secretKey: storeOnly ? undefined : settings.personalApiKey,
      },
      { sendEventsByDefault, notifier, mode: storeOnly ? 'store' : 'poll', ownFetch },
    );
  }

  /**
   * A flag's answer: from the memo (synchronously), else the result cache, else
   * `evaluate` (posthog-node). `sendFeatureFlagEvents` is the read's option.
   */
  evaluate(
    request: FlagRequest,
    sendFeatureFlagEvents: boolean | undefined,
    evaluate: () => Promise<FlagAnswer>,
  ): FlagAnswer | Promise<FlagAnswer> {
    const memo = this.memo;
    const hit = memo?.get(request);
    if (hit) return hit;
    const sendEvents = sendFeatureFlagEvents ?? this.sendEventsByDefault;
    const answer = this.results ? this.results.evaluate(request, sendEvents, evaluate) : evaluate();
    if (!memo) return answer;
    const generation = memo.generation;
    return answer.then((a) => {
      memo.keep(request, a, generation);
      return a;
    });
  }

  /** posthog-node's fetch, watched by the shared definitions (304s, ETags), or for the status. */
  wrapFetch(fetch: typeof globalThis.fetch): typeof globalThis.fetch {
    if (this.definitions) return this.definitions.wrapFetch(fetch);
    return this.ownFetch ? this.ownFetch.wrap(fetch) : fetch;
  }

  /** Connects the caches to the client they serve. */
  attach(client: FlagRecordingPostHog): void {
    this.definitions?.attach(() => client.reloadFeatureFlags());
    const ownFetch = this.ownFetch;
    if (ownFetch) {
      client.on('localEvaluationFlagsLoaded', (count: unknown) => {
        ownFetch.flagCount = typeof count === 'number' ? count : 0;
      });
    }
    this.results?.attach(client);
    this.memo?.attach(client);
  }

  /** Waits for pending writes (each bounded), then closes what the kit opened. */
  async close(): Promise<void> {
    await this.definitions?.settled();
    await this.store?.close();
  }
}

const identity = processIdentity();

/** The status of a kit's flags; `caches` undefined: no caches (remote evaluation, or posthog-node alone). */
export function flagsStatus(
  caches: FlagCaches | undefined,
  mode: 'poll' | 'store' = 'poll',
  ownFetch?: {
    confirmedAt: number | undefined;
    flagCount: number;
    lastError: FlagsStatus['lastError'];
  },
): FlagsStatus {
  const store = caches?.store && {
    description: caches.store.description,
    failing: caches.store.failing,
  };
  if (caches?.definitions) return { ...caches.definitions.status(), store };
  const confirmedAt = ownFetch?.confirmedAt;
  return {
    mode,
    source: confirmedAt === undefined ? 'none' : 'own-fetch',
    confirmedAt,
    ageMs: confirmedAt === undefined ? undefined : Math.max(0, Date.now() - confirmedAt),
    flagCount: ownFetch?.flagCount ?? 0,
    stale: mode === 'store',
    identity,
    leader: false,
    leaderIdentity: undefined,
    store,
    lastError: ownFetch?.lastError ?? caches?.store?.lastFailureInfo,
  };
}
