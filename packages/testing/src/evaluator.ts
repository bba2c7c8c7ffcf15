import type { FlagDefinitionCacheData, FlagDefinitionCacheProvider } from 'posthog-node';
import { PostHog } from 'posthog-node';
import type { CohortDefinitions, FlagDefinition, GroupTypeMapping } from './types.ts';

/** What one `/flags` request asks to evaluate. */
export interface EvaluationInput {
  distinctId: string;
  groups: Record<string, string>;
  personProperties: Record<string, unknown>;
  groupProperties: Record<string, Record<string, unknown>>;
  flagKeys: string[];
}

/**
 * One flag's outcome: a value, or why posthog-node could not evaluate it locally
 * (`missing_context`, `unsupported_definition`, ... or `error` for a definition it rejected).
 */
export type FlagOutcome =
  | { key: string; value: boolean | string; payload: unknown }
  | { key: string; unresolved: string };

/**
 * posthog-node's own local evaluator, fed from memory: a client with no personal key and a
 * definitions cache provider is a "cache-only reader" that never fetches and never polls.
 */
export class FlagEvaluator {
  private data: FlagDefinitionCacheData;
  private readonly client: PostHog;
  private loaded: Promise<void>;

  constructor(projectApiKey: string) {
    this.data = { flags: [], group_type_mapping: {}, groupTypeMapping: {}, cohorts: {} };
    const provider: FlagDefinitionCacheProvider = {
      getFlagDefinitions: () => this.data,
      shouldFetchFlagDefinitions: () => false,
      onFlagDefinitionsReceived: () => {},
      shutdown: () => {},
    };
    this.client = new PostHog(projectApiKey, {
      host: 'http://posthog-emulator.invalid',
      flagDefinitionCacheProvider: provider,
      featureFlagsPollingInterval: null,
      sendFeatureFlagEvent: false,
      flushAt: 10_000,
      flushInterval: 0,
      fetchRetryCount: 0,
      // Evaluation is local only; nothing may ever leave this client.
      fetch: () => Promise.reject(new Error('posthog-kit emulator evaluator is offline')),
    });
    this.client.on('error', () => {});
    this.loaded = this.client.reloadFeatureFlags();
  }

  /** Swaps the definitions; evaluations after this call see the new ones. */
  update(flags: readonly FlagDefinition[], mapping: GroupTypeMapping, cohorts: CohortDefinitions) {
    // Marked client-only for this reader alone: posthog-node then keeps quiet about flags it
    // cannot evaluate locally (a warning about the emulator, not the user's client); with
    // onlyEvaluateLocally the runtime changes nothing else.
    const quiet = flags.map((f) => ({ ...f, evaluation_runtime: 'client' }));
    this.data = {
      flags: quiet as unknown as FlagDefinitionCacheData['flags'],
      group_type_mapping: mapping,
      groupTypeMapping: mapping,
      cohorts: cohorts as unknown as FlagDefinitionCacheData['cohorts'],
    };
    // Chained so that a reload never reuses one already in flight with older data.
    this.loaded = this.loaded.then(() => this.client.reloadFeatureFlags()).catch(() => {});
  }

  async evaluate(input: EvaluationInput): Promise<FlagOutcome[]> {
    await this.loaded;
    if (input.flagKeys.length === 0) return [];
    const snapshot = await this.client.evaluateFlags(input.distinctId, {
      groups: input.groups,
      personProperties: input.personProperties,
      groupProperties: input.groupProperties,
      onlyEvaluateLocally: true,
      flagKeys: input.flagKeys,
    });
    const evaluated = new Set(snapshot.keys);
    return input.flagKeys.map((key): FlagOutcome => {
      if (evaluated.has(key)) {
        const value = snapshot.getFlag(key, { sendFeatureFlagEvents: false }) ?? false;
        return { key, value, payload: snapshot.getFlagPayload(key) };
      }
      return { key, unresolved: snapshot.unresolvedFlags[key] ?? 'error' };
    });
  }

  async close(): Promise<void> {
    await this.client.shutdown(100);
  }
}
