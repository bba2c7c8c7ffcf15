import type { FlagAnswer, FlagRecordingPostHog, FlagRequest } from './result-cache.ts';
import { cacheable } from './result-cache.ts';

const LOCALLY = 'Evaluated locally';

/**
 * Local evaluations, remembered until the definitions change. A local evaluation is a
 * function of the definitions and the inputs, and posthog-node's costs a Web Crypto
 * SHA-1 per flag (a thread-pool job): most of a request's time when a handler checks a
 * flag (see bench/). The memo answers the same inputs again from memory, synchronously,
 * with the `$feature_flag_called` properties posthog-node built, which the reader sends
 * through posthog-node's own dedupe, so experiments keep their exposures.
 *
 * - Only answers posthog-node evaluated locally (a flag the local definitions do not have
 *   included: it is missing until they change); never a remote answer or a failure.
 * - Forgotten when posthog-node loads definitions, and at least once per poll interval
 *   (conditions on relative dates move with time).
 * - At most `maxEntries` (oldest dropped first); nothing while flag overrides are set.
 */
export class LocalEvaluationMemo {
  /**
   * By flag key (a handful, hot in the CPU's cache), then inputs: one look-up in a map as
   * large as the users, whose memory a request reaches cold (about 0.3 µs on its own).
   */
  private entries = new Map<string, Map<string, FlagAnswer>>();
  private count = 0;
  /** Set when the oldest answer kept reaches `maxAgeMs` (a timer: no clock read per look-up). */
  private stale = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly maxAgeMs: number;
  private readonly maxEntries: number;
  private client: FlagRecordingPostHog | undefined;

  constructor(options: { maxAgeMs: number; maxEntries?: number }) {
    this.maxAgeMs = options.maxAgeMs;
    this.maxEntries = options.maxEntries ?? 10_000;
  }

  attach(client: FlagRecordingPostHog): void {
    this.client = client;
    client.on('localEvaluationFlagsLoaded', () => this.forget());
  }

  /** Drops everything remembered (new definitions). */
  forget(): void {
    this.entries = new Map();
    this.count = 0;
    this.stale = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** From the first answer kept after a forget, `maxAgeMs` until all are forgotten. */
  private arm(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.stale = true;
      this.timer = undefined;
    }, this.maxAgeMs);
    // It never keeps a process alive; it lives at most maxAgeMs, and only with answers kept.
    this.timer.unref?.();
  }

  /** How many answers are remembered. */
  get size(): number {
    return this.count;
  }

  /** The generation answers are kept in: an answer computed under an older one is not kept. */
  get generation(): object {
    return this.entries;
  }

  /** The remembered answer for these inputs, or undefined. */
  get(request: FlagRequest): FlagAnswer | undefined {
    return this.lookup(request.key, request.inputsKey);
  }

  /** The remembered answer of a flag for an inputs key, or undefined. */
  lookup(key: string, inputsKey: string): FlagAnswer | undefined {
    const client = this.client;
    if (!client || client.hasFlagOverrides) return undefined;
    if (this.stale) {
      this.forget();
      return undefined;
    }
    return this.entries.get(key)?.get(inputsKey);
  }

  /** Keeps a local answer, unless the definitions changed while it was computed. */
  keep(request: FlagRequest, answer: FlagAnswer, generation: object): void {
    if (generation !== this.entries || this.client?.hasFlagOverrides) return;
    if (!(answer.local || answer.result?.reason === LOCALLY) || !cacheable(answer)) return;
    let flag = this.entries.get(request.key);
    if (!flag) {
      flag = new Map();
      this.entries.set(request.key, flag);
    }
    if (!flag.has(request.inputsKey)) {
      if (this.count >= this.maxEntries) {
        // The flag's oldest inputs go first (every flag's, when this one has none yet).
        const oldest = flag.keys().next();
        if (oldest.done) {
          this.forget();
          return;
        }
        flag.delete(oldest.value);
        this.count--;
      }
      this.count++;
    }
    this.arm();
    flag.set(request.inputsKey, {
      result: answer.result && structuredClone(answer.result),
      event: answer.event,
      failed: false,
      local: true,
      // Set on the first read's exposure; here from the start, so every entry has one shape.
      exposed: false,
      enabled: answer.result?.enabled ?? false,
    });
  }
}
