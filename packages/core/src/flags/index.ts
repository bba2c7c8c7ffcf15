import type { ErrorReporter } from '../errors.ts';
import type { ResolvedSettings } from '../settings.ts';
import { SharedFlagDefinitions } from './definitions-cache.ts';
import { LocalEvaluationMemo } from './memo.ts';
import {
  type CachedFlagResult,
  canReplayFlagCalls,
  type Evaluation,
  FlagCallRecorder,
  type FlagInputs,
  FlagRecordingPostHog,
  type FlagRequest,
  FlagResultCache,
} from './result-cache.ts';
import { GuardedStore, isSharedStore, resolveStore } from './store.ts';

export { redisSecrets, STORE_TIMEOUT_MS } from './store.ts';
export { type Evaluation, type FlagInputs, FlagRecordingPostHog, type FlagRequest };

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
  private readonly sendEventsByDefault: boolean;

  private constructor(
    parts: Pick<FlagCaches, 'store' | 'definitions' | 'results' | 'memo'>,
    sendEventsByDefault: boolean,
  ) {
    this.store = parts.store;
    this.definitions = parts.definitions;
    this.results = parts.results;
    this.memo = parts.memo;
    this.sendEventsByDefault = sendEventsByDefault;
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
    // The default in-memory store shares nothing: posthog-node polling alone is the same, for less.
    const shareDefinitions =
      settings.personalApiKey !== undefined && isSharedStore(cache, settings.redisUrl);
    let cacheResults = settings.featureFlagsCacheTtlMs > 0;
    if (cacheResults && !canReplayFlagCalls()) {
      errors.warn(
        'POSTHOG_FEATURE_FLAGS_CACHE_TTL: this posthog-node has no _captureFlagCalledEventIfNeeded, so cached answers could not record $feature_flag_called; the flag result cache is off',
      );
      cacheResults = false;
    }
    const memoize = settings.personalApiKey !== undefined && canReplayFlagCalls();
    if (!shareDefinitions && !cacheResults && !memoize) return undefined;
    // posthog-node's client-wide default for `$feature_flag_called`.
    const sendEventsByDefault = clientOptions?.sendFeatureFlagEvent !== false;
    const store =
      shareDefinitions || cacheResults
        ? new GuardedStore(resolveStore(cache, settings.redisUrl), errors)
        : undefined;
    const definitions =
      store && shareDefinitions
        ? new SharedFlagDefinitions({
            store,
            errors,
            prefix: settings.flagDefinitionsCachePrefix,
            projectApiKey: apiKey,
            pollIntervalMs: settings.pollIntervalMs,
            lockTtlMs: settings.flagDefinitionsLockTtlMs,
            cacheTtlMs: settings.flagDefinitionsCacheTtlMs,
          })
        : undefined;
    const results =
      store && cacheResults
        ? new FlagResultCache(store, {
            prefix: settings.featureFlagsCachePrefix,
            ttlMs: settings.featureFlagsCacheTtlMs,
            projectApiKey: apiKey,
          })
        : undefined;
    const memo = memoize
      ? new LocalEvaluationMemo({ maxAgeMs: settings.pollIntervalMs })
      : undefined;
    return new FlagCaches({ store, definitions, results, memo }, sendEventsByDefault);
  }

  /**
   * A flag's answer: from the memo, else the result cache, else `evaluate` (posthog-node).
   * `sendFeatureFlagEvents` is the call's option.
   */
  async evaluate(
    request: FlagRequest,
    sendFeatureFlagEvents: boolean | undefined,
    evaluate: () => Promise<Evaluation>,
  ): Promise<CachedFlagResult | undefined> {
    const sendEvents = sendFeatureFlagEvents ?? this.sendEventsByDefault;
    const results = this.results;
    // The memo takes the result cache's answer and its recorded event properties as they
    // are: recording the same call in both layers would make each see two callers.
    const fromResults = results && (() => results.evaluate(request, sendEvents, evaluate));
    if (this.memo) return this.memo.evaluate(request, sendEvents, evaluate, fromResults);
    return fromResults ? (await fromResults()).outcome.result : (await evaluate()).result;
  }

  /** posthog-node's fetch, watched by the shared definitions (304s, ETags). */
  wrapFetch(fetch: typeof globalThis.fetch): typeof globalThis.fetch {
    return this.definitions ? this.definitions.wrapFetch(fetch) : fetch;
  }

  /** Connects the caches to the client they serve. */
  attach(client: FlagRecordingPostHog): void {
    this.definitions?.attach(() => client.reloadFeatureFlags());
    if (!this.results && !this.memo) return;
    const recorder = new FlagCallRecorder(client);
    this.results?.attach(recorder);
    this.memo?.attach(recorder);
  }

  /** Waits for pending writes (each bounded), then closes what the kit opened. */
  async close(): Promise<void> {
    await this.definitions?.settled();
    await this.store?.close();
  }
}
