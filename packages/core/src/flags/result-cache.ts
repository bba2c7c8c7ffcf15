import { PostHog } from 'posthog-node';
import { type GuardedStore, normalizeHost, readKey, sha256Hex } from './store.ts';

/** What posthog-node hands `_captureFlagCalledEventIfNeeded` (its `FlagCalledEventParams`). */
export interface FlagCalledParams {
  distinctId: string;
  key: string;
  response: boolean | string | undefined;
  groups: Record<string, string | number> | undefined;
  disableGeoip: boolean | undefined;
  properties: Record<string, unknown>;
}

/** What decides a flag's answer, for the caches. */
export interface FlagRequest {
  key: string;
  distinctId: string;
  inputs: FlagInputs;
  deviceId: string | undefined;
  /** Everything but the flag key, as one string: equal inputs give equal text (the memo's key). */
  inputsKey: string;
}

/** The format version of a cached result; anything else is ignored and replaced. */
export const RESULT_FORMAT = 1;

/** A flag's answer as posthog-node gives it. */
export interface CachedFlagResult {
  key: string;
  enabled: boolean;
  variant: string | undefined;
  payload: unknown;
  reason?: string | undefined;
  reasonCode?: string | undefined;
}

/** What is stored under `<prefix>:{<hash>}`, as JSON. */
interface ResultEntry {
  v: typeof RESULT_FORMAT;
  /** The answer; null stands for undefined (no such flag). */
  r: CachedFlagResult | null;
  /** The `$feature_flag_called` properties posthog-node built for it; null when unknown. */
  e: Record<string, unknown> | null;
}

/** The inputs that decide a flag's answer, all of them part of the cache key. */
export interface FlagInputs {
  groups: Record<string, string> | undefined;
  personProperties: Record<string, unknown> | undefined;
  groupProperties: Record<string, Record<string, unknown>> | undefined;
  onlyEvaluateLocally: boolean | undefined;
  disableGeoip: boolean | undefined;
}

/**
 * One flag's answer as the kit keeps it: the result, and the `$feature_flag_called`
 * properties posthog-node built for it (undefined when there are none: the read ran out
 * of time, or the flag was not evaluated). `failed`: asking PostHog failed.
 */
export interface FlagAnswer {
  result: CachedFlagResult | undefined;
  event: Record<string, unknown> | undefined;
  failed: boolean;
  /** A function of the local definitions and the inputs (the memo may keep it). */
  local?: boolean | undefined;
  /**
   * Set once its `$feature_flag_called` went through posthog-node's dedupe: a remembered
   * answer (the memo's, the in-memory result cache's) is the same object for every later
   * read with the same inputs, whose exposure that dedupe (by user, flag, value and groups)
   * would drop; it is not asked again.
   */
  exposed?: boolean | undefined;
  /** `result.enabled`, kept on the answer itself by the memo (read without reaching the result). */
  enabled?: boolean | undefined;
}

/** What posthog-node's `evaluateFlags()` returns (a `FeatureFlagEvaluations`), as far as the kit reads it. */
export interface EvaluatedFlags {
  getFlag(key: string, options?: { sendFeatureFlagEvents?: boolean }): boolean | string | undefined;
  getFlagPayload(key: string): unknown;
  readonly keys: string[];
}

/** What the kit adds to a `$feature_flag_called` it sends: the context's properties, a fresh time. */
interface Sending {
  context: (() => Record<string, unknown> | undefined) | undefined;
  evaluatedAt: number | undefined;
}

/**
 * posthog-node's client, with the kit's control over `$feature_flag_called`: flags are
 * evaluated with posthog-node's `evaluateFlags()` and read from its snapshot, which hands
 * the event it built to `_captureFlagCalledEventIfNeeded` synchronously. `readFlag`
 * takes that event without sending it (the kit keeps it with the answer, for the caches
 * and for the request); `sendFlagCalled` sends it through posthog-node's own dedupe, with
 * the request's context. `_captureFlagCalledEventIfNeeded` is posthog-node's own
 * (protected); a test fails if it changes, and without it the caches turn themselves off.
 */
export class FlagRecordingPostHog extends PostHog {
  /** Whether `overrideFeatureFlags` set overrides (a cached answer must not hide them). */
  hasFlagOverrides = false;
  /** posthog-node's `sendFeatureFlagEvent` option: whether reads send `$feature_flag_called` by default. */
  readonly sendFlagEventsByDefault: boolean;
  /** Set while `readFlag` takes an event instead of sending it. */
  #taking: { params: FlagCalledParams | undefined } | undefined;
  /** Set while `sendFlagCalled` sends one. */
  #sending: Sending | undefined;
  /** The kit's flag reader for this client (built on first use). @internal */
  reader: unknown;

  constructor(apiKey: string, options?: ConstructorParameters<typeof PostHog>[1]) {
    super(apiKey, options);
    this.sendFlagEventsByDefault =
      (options as { sendFeatureFlagEvent?: boolean } | undefined)?.sendFeatureFlagEvent !== false;
  }

  protected override _captureFlagCalledEventIfNeeded(params: FlagCalledParams): void {
    const taking = this.#taking;
    if (taking) {
      taking.params = params;
      return;
    }
    super._captureFlagCalledEventIfNeeded(params as never);
  }

  /**
   * A flag's value from a posthog-node snapshot, with the `$feature_flag_called` event
   * posthog-node built for the read, not sent. @internal
   */
  readFlag(flags: EvaluatedFlags, key: string): FlagCalledParams | undefined {
    const taking: { params: FlagCalledParams | undefined } = { params: undefined };
    this.#taking = taking;
    try {
      flags.getFlag(key, { sendFeatureFlagEvents: true });
    } finally {
      this.#taking = undefined;
    }
    return taking.params;
  }

  /**
   * Sends a `$feature_flag_called` through posthog-node's dedupe (once per user, flag and
   * value), with the context's properties under posthog-node's, built only when sent. @internal
   */
  sendFlagCalled(
    params: FlagCalledParams,
    context?: () => Record<string, unknown> | undefined,
    evaluatedAt?: number,
  ): void {
    this.#sending = { context, evaluatedAt };
    try {
      super._captureFlagCalledEventIfNeeded(params as never);
    } finally {
      this.#sending = undefined;
    }
  }

  override capture(props: Parameters<PostHog['capture']>[0]): void {
    const sending = this.#sending;
    if (sending && props.event === '$feature_flag_called') {
      this.#sending = undefined;
      const own = props.properties;
      const properties = { ...sending.context?.(), ...own };
      if (sending.evaluatedAt !== undefined) {
        properties.$feature_flag_evaluated_at = sending.evaluatedAt;
      }
      super.capture({ ...props, properties });
      return;
    }
    super.capture(props);
  }

  override overrideFeatureFlags(overrides: Parameters<PostHog['overrideFeatureFlags']>[0]): void {
    this.hasFlagOverrides = overrides !== false;
    super.overrideFeatureFlags(overrides);
  }
}

/** Whether this posthog-node has the method the result cache relies on. */
export function canReplayFlagCalls(): boolean {
  return (
    typeof (PostHog.prototype as unknown as Record<string, unknown>)
      ._captureFlagCalledEventIfNeeded === 'function'
  );
}

/** JSON with object keys sorted at every level: equal inputs give equal text. */
export function canonicalJson(value: unknown): string {
  if (value === undefined || value === null) return 'null';
  if (typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  const withJson = value as { toJSON?: () => unknown };
  if (typeof withJson.toJSON === 'function') return canonicalJson(withJson.toJSON());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined && typeof record[k] !== 'function')
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
}

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

function parseEntry(value: unknown): ResultEntry | undefined {
  if (!isObject(value) || value.v !== RESULT_FORMAT) return undefined;
  const r = value.r;
  const e = value.e;
  if (e !== null && !isObject(e)) return undefined;
  if (r === null) return { v: RESULT_FORMAT, r: null, e };
  if (!isObject(r) || typeof r.key !== 'string' || typeof r.enabled !== 'boolean') return undefined;
  if (r.variant !== undefined && typeof r.variant !== 'string') return undefined;
  const result: CachedFlagResult = {
    key: r.key,
    enabled: r.enabled,
    variant: r.variant as string | undefined,
    // A copy: the in-memory store keeps objects, and a caller may change what it gets.
    payload:
      typeof r.payload === 'object' && r.payload !== null ? structuredClone(r.payload) : r.payload,
    reason: typeof r.reason === 'string' ? r.reason : undefined,
    reasonCode: typeof r.reasonCode === 'string' ? r.reasonCode : undefined,
  };
  return { v: RESULT_FORMAT, r: result, e };
}

/** The value posthog-node reports as `$feature_flag_response` for an answer. */
export function responseOf(result: CachedFlagResult | undefined): boolean | string | undefined {
  if (result === undefined) return undefined;
  return result.enabled ? (result.variant ?? true) : false;
}

/**
 * Whether an answer may be kept (result cache, memo): not when asking PostHog failed or the
 * read ran out of time, not when posthog-node flagged an error other than "flag missing",
 * and `undefined` only when PostHog said the flag does not exist.
 */
export function cacheable(answer: FlagAnswer): boolean {
  if (answer.failed || answer.event === undefined) return false;
  const error = answer.event.$feature_flag_error;
  if (error !== undefined && error !== 'flag_missing') return false;
  return answer.result !== undefined || error === 'flag_missing';
}

/**
 * The flag result cache (opt-in with a TTL): `<prefix>:{<sha-256 of every input>}` to the
 * answer and the `$feature_flag_called` properties posthog-node built for it.
 *
 * - The key covers the host, project, flag key, distinct id, groups, person properties,
 *   group properties, `onlyEvaluateLocally`, `disableGeoip` and device id (canonical JSON,
 *   sorted keys, then SHA-256): 64 hex characters whatever the inputs, as its own hash tag
 *   (entries spread over a Redis Cluster's slots; a probe after a failure finds the node).
 * - The entry keeps the `$feature_flag_called` properties posthog-node built, whether or
 *   not the read sent them; a hit sends them through posthog-node's own
 *   `_captureFlagCalledEventIfNeeded` (same event, same per-distinct-id dedupe). So a
 *   "no such flag" answer is cached with events off too.
 * - Not cached: answers from a failed request to PostHog, answers posthog-node flags with
 *   an error other than "flag missing", `undefined` unless PostHog said the flag is missing,
 *   and anything while `overrideFeatureFlags` is in force.
 * - Store calls are bounded like every other; a failing store is skipped at once.
 */
export class FlagResultCache {
  private readonly store: GuardedStore;
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly projectApiKey: string;
  private readonly host: string | undefined;
  private client: FlagRecordingPostHog | undefined;

  constructor(
    store: GuardedStore,
    options: { prefix: string; ttlMs: number; projectApiKey: string; host?: string | undefined },
  ) {
    this.store = store;
    this.prefix = options.prefix;
    this.ttlMs = options.ttlMs;
    this.projectApiKey = options.projectApiKey;
    this.host = options.host === undefined ? undefined : normalizeHost(options.host);
  }

  /** Connects the cache to the client whose answers it keeps. */
  attach(client: FlagRecordingPostHog): void {
    this.client = client;
  }

  /** The cache key of an evaluation. */
  async keyFor(
    key: string,
    distinctId: string,
    inputs: FlagInputs,
    deviceId: string | undefined,
  ): Promise<string> {
    const text = canonicalJson([
      this.host ?? null,
      this.projectApiKey,
      key,
      distinctId,
      inputs.groups,
      inputs.personProperties,
      inputs.groupProperties,
      inputs.onlyEvaluateLocally ?? null,
      inputs.disableGeoip ?? null,
      deviceId ?? null,
    ]);
    return `${this.prefix}:{${await sha256Hex(text)}}`;
  }

  /**
   * The answer from the cache, or from `evaluate` (posthog-node) on a miss, which is then
   * stored with the `$feature_flag_called` properties posthog-node built for it, whether
   * or not this read sends them (so "no such flag" is kept with events off too). A hit
   * for a read that sends events needs those properties: an entry without them is a miss.
   */
  async evaluate(
    request: FlagRequest,
    sendEvents: boolean,
    evaluate: () => Promise<FlagAnswer>,
  ): Promise<FlagAnswer> {
    const client = this.client;
    if (!client || client.hasFlagOverrides) return evaluate();
    const { key, distinctId, inputs } = request;
    let cacheKey: string;
    try {
      cacheKey = await this.keyFor(key, distinctId, inputs, request.deviceId);
    } catch {
      // Inputs that are not JSON (a BigInt...): not cacheable.
      return evaluate();
    }
    const read = await this.store.run('read flag result', (s) => readKey(s.keyv, cacheKey), {
      key: cacheKey,
      write: false,
    });
    const entry = read.ok ? parseEntry(read.value) : undefined;
    if (entry && (!sendEvents || entry.e)) {
      const result = entry.r ?? undefined;
      return { result, event: entry.e ? { ...entry.e } : undefined, failed: false };
    }
    const answer = await evaluate();
    if (!read.ok || !cacheable(answer)) return answer;
    const value: ResultEntry = structuredClone({
      v: RESULT_FORMAT,
      r: answer.result ?? null,
      e: answer.event ?? null,
    });
    void this.store.run('write flag result', (s) => s.keyv.set(cacheKey, value, this.ttlMs), {
      key: cacheKey,
      write: true,
    });
    return answer;
  }
}
