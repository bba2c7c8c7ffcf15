import type { ErrorReporter } from '../errors.ts';
import type { ResolvedSettings } from '../settings.ts';
import { SharedFlagDefinitions } from './definitions-cache.ts';
import {
  canReplayFlagCalls,
  type Evaluation,
  type FlagInputs,
  FlagRecordingPostHog,
  FlagResultCache,
} from './result-cache.ts';
import { GuardedStore, isSharedStore, resolveStore } from './store.ts';

export { redisSecrets, STORE_TIMEOUT_MS } from './store.ts';
export { type Evaluation, type FlagInputs, FlagRecordingPostHog };

/**
 * The kit's flag caches on one store: the shared flag definitions (a posthog-node
 * `FlagDefinitionCacheProvider`, with a personal key and a store other processes can
 * reach: `cache` or `redisUrl`) and the flag result cache (when its TTL is above 0).
 * None of it exists when neither is wanted.
 */
export class FlagCaches {
  readonly store: GuardedStore;
  readonly definitions: SharedFlagDefinitions | undefined;
  readonly results: FlagResultCache | undefined;

  private constructor(
    store: GuardedStore,
    definitions: SharedFlagDefinitions | undefined,
    results: FlagResultCache | undefined,
  ) {
    this.store = store;
    this.definitions = definitions;
    this.results = results;
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
    if (!shareDefinitions && !cacheResults) return undefined;
    const store = new GuardedStore(resolveStore(cache, settings.redisUrl), errors);
    const definitions = shareDefinitions
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
    const results = cacheResults
      ? new FlagResultCache(store, {
          prefix: settings.featureFlagsCachePrefix,
          ttlMs: settings.featureFlagsCacheTtlMs,
          projectApiKey: apiKey,
          // posthog-node's client-wide default for `$feature_flag_called`.
          sendEventsByDefault: clientOptions?.sendFeatureFlagEvent !== false,
        })
      : undefined;
    return new FlagCaches(store, definitions, results);
  }

  /** posthog-node's fetch, watched by the shared definitions (304s, ETags). */
  wrapFetch(fetch: typeof globalThis.fetch): typeof globalThis.fetch {
    return this.definitions ? this.definitions.wrapFetch(fetch) : fetch;
  }

  /** Connects the caches to the client they serve. */
  attach(client: FlagRecordingPostHog): void {
    this.definitions?.attach(() => client.reloadFeatureFlags());
    this.results?.attach(client);
  }

  /** Waits for pending writes (each bounded), then closes what the kit opened. */
  async close(): Promise<void> {
    await this.definitions?.settled();
    await this.store.close();
  }
}
