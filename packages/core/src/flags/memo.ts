import {
  type CachedFlagResult,
  cacheable,
  canonicalJson,
  type Evaluation,
  type FlagCalledParams,
  type FlagCallRecorder,
  type FlagInputs,
} from './result-cache.ts';

interface MemoEntry {
  result: CachedFlagResult | undefined;
  /** posthog-node's `$feature_flag_called` properties for it; undefined when events were off. */
  event: Record<string, unknown> | undefined;
}

const LOCALLY = 'Evaluated locally';

/**
 * Local evaluations, remembered until the definitions change. A local evaluation is a
 * function of the definitions and the inputs, and posthog-node's costs a Web Crypto
 * SHA-1 per flag (a thread-pool job): most of a request's time when a handler checks a
 * flag (see bench/). The memo answers the same inputs again from memory, and records
 * `$feature_flag_called` exactly as posthog-node would have (its own properties, its own
 * dedupe), so experiments keep their exposures.
 *
 * - Only answers posthog-node evaluated locally; never a remote answer or a failure.
 * - Forgotten when posthog-node loads definitions, and at least once per poll interval
 *   (conditions on relative dates move with time).
 * - At most `maxEntries` (oldest dropped first); nothing while flag overrides are set.
 */
export class LocalEvaluationMemo {
  private entries = new Map<string, MemoEntry>();
  private generationStart = Date.now();
  private readonly maxAgeMs: number;
  private readonly maxEntries: number;
  private recorder: FlagCallRecorder | undefined;

  constructor(options: { maxAgeMs: number; maxEntries?: number }) {
    this.maxAgeMs = options.maxAgeMs;
    this.maxEntries = options.maxEntries ?? 10_000;
  }

  attach(recorder: FlagCallRecorder): void {
    this.recorder = recorder;
    recorder.client.on('localEvaluationFlagsLoaded', () => this.forget());
  }

  /** Drops everything remembered (new definitions). */
  forget(): void {
    this.entries = new Map();
    this.generationStart = Date.now();
  }

  /** How many answers are remembered. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The memo's answer, else `recorded()` (a layer behind that records the event
   * properties itself, the result cache) or `evaluate` recorded here.
   */
  async evaluate(
    request: { key: string; distinctId: string; inputs: FlagInputs; deviceId: string | undefined },
    sendEvents: boolean,
    evaluate: () => Promise<Evaluation>,
    recorded?: () => Promise<{ outcome: Evaluation; params: FlagCalledParams | undefined }>,
  ): Promise<CachedFlagResult | undefined> {
    const unmemoized = async () =>
      recorded ? (await recorded()).outcome.result : (await evaluate()).result;
    const recorder = this.recorder;
    if (!recorder || recorder.client.hasFlagOverrides) return unmemoized();
    if (Date.now() - this.generationStart > this.maxAgeMs) this.forget();
    let memoKey: string;
    try {
      const { inputs } = request;
      memoKey = canonicalJson([
        request.key,
        request.distinctId,
        inputs.groups,
        inputs.personProperties,
        inputs.groupProperties,
        inputs.onlyEvaluateLocally ?? null,
        inputs.disableGeoip ?? null,
        request.deviceId ?? null,
      ]);
    } catch {
      return unmemoized();
    }
    const entry = this.entries.get(memoKey);
    if (entry && (!sendEvents || entry.event)) {
      if (sendEvents && entry.event) {
        recorder.replay(request, entry.result, {
          ...entry.event,
          $feature_flag_evaluated_at: Date.now(),
        });
      }
      return entry.result && { ...entry.result };
    }
    const generation = this.entries;
    const { outcome, params } = recorded
      ? await recorded()
      : await recorder.record(
          { key: request.key, distinctId: request.distinctId, groups: request.inputs.groups },
          sendEvents,
          evaluate,
        );
    const keep = outcome.result?.reason === LOCALLY ? cacheable(outcome, params) : undefined;
    // Not if the definitions changed while this evaluation ran.
    if (keep && generation === this.entries) {
      if (this.entries.size >= this.maxEntries) {
        const oldest = this.entries.keys().next().value;
        if (oldest !== undefined) this.entries.delete(oldest);
      }
      this.entries.set(memoKey, {
        result: outcome.result && structuredClone(outcome.result),
        event: keep.params?.properties,
      });
    }
    return outcome.result;
  }
}
