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

/** What the kit's own evaluation gives back: the answer, and whether asking PostHog failed. */
export interface Evaluation {
  result: CachedFlagResult | undefined;
  failed: boolean;
}

/**
 * posthog-node's client with a tap on `$feature_flag_called`: the result cache keeps the
 * properties posthog-node built on a miss and replays them, through the same per-distinct-id
 * dedupe, on a hit. `_captureFlagCalledEventIfNeeded` is posthog-node's own (protected);
 * a test fails if it changes, and without it the result cache turns itself off.
 */
export class FlagRecordingPostHog extends PostHog {
  /** @internal */
  flagCallTap: ((params: FlagCalledParams) => void) | undefined;
  /** Whether `overrideFeatureFlags` set overrides (a cached answer must not hide them). */
  hasFlagOverrides = false;

  protected override _captureFlagCalledEventIfNeeded(params: FlagCalledParams): void {
    this.flagCallTap?.(params);
    super._captureFlagCalledEventIfNeeded(params as never);
  }

  /** Records a cached answer's `$feature_flag_called`, deduped as posthog-node dedupes its own. @internal */
  replayFlagCalled(params: FlagCalledParams): void {
    super._captureFlagCalledEventIfNeeded(params as never);
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

interface Recorder {
  groups: Record<string, string> | undefined;
  params: FlagCalledParams | undefined;
  ambiguous: boolean;
}

/**
 * Matches posthog-node's `$feature_flag_called` calls to the evaluation that caused them,
 * so a cache can keep the exact properties and replay them on a hit. One per client.
 */
export class FlagCallRecorder {
  readonly client: FlagRecordingPostHog;
  private readonly waiting = new Map<string, Recorder[]>();

  constructor(client: FlagRecordingPostHog) {
    this.client = client;
    client.flagCallTap = (params) => this.tap(params);
  }

  /**
   * Runs `evaluate` and returns its outcome with the `$feature_flag_called` properties
   * posthog-node built for it (undefined when events are off, or when two concurrent
   * evaluations of the same user and flag cannot be told apart).
   */
  async record<T>(
    request: { key: string; distinctId: string; groups: Record<string, string> | undefined },
    sendEvents: boolean,
    evaluate: () => Promise<T>,
  ): Promise<{ outcome: T; params: FlagCalledParams | undefined }> {
    if (!sendEvents) return { outcome: await evaluate(), params: undefined };
    const recorder: Recorder = { groups: request.groups, params: undefined, ambiguous: false };
    const slot = `${request.distinctId}\u0000${request.key}`;
    this.waiting.set(slot, [...(this.waiting.get(slot) ?? []), recorder]);
    try {
      const outcome = await evaluate();
      return { outcome, params: recorder.ambiguous ? undefined : recorder.params };
    } finally {
      const left = (this.waiting.get(slot) ?? []).filter((r) => r !== recorder);
      if (left.length > 0) this.waiting.set(slot, left);
      else this.waiting.delete(slot);
    }
  }

  /** Records a cached answer's `$feature_flag_called` through posthog-node's own dedupe. */
  replay(
    request: { key: string; distinctId: string; inputs: FlagInputs },
    result: CachedFlagResult | undefined,
    properties: Record<string, unknown>,
  ): void {
    this.client.replayFlagCalled({
      distinctId: request.distinctId,
      key: request.key,
      response: responseOf(result),
      groups: request.inputs.groups,
      disableGeoip: request.inputs.disableGeoip,
      properties,
    });
  }

  private tap(params: FlagCalledParams): void {
    const waiting = this.waiting.get(`${params.distinctId}\u0000${params.key}`);
    if (!waiting) return;
    // Group objects are made per call, so they tell concurrent misses apart; without
    // groups, two misses for the same user and flag cannot be told apart: neither keeps
    // its properties (the answers are still cached, and a hit that needs an event re-asks).
    const mine = waiting.length === 1 ? waiting : waiting.filter((r) => r.groups === params.groups);
    const only = mine.length === 1 ? mine[0] : undefined;
    if (!only || only.params) {
      for (const r of mine.length > 0 ? mine : waiting) r.ambiguous = true;
      return;
    }
    only.params = params;
  }
}

/** The properties to keep for an answer, or undefined when the answer must not be cached. */
export function cacheable(
  outcome: Evaluation,
  params: FlagCalledParams | undefined,
): { params: FlagCalledParams | undefined } | undefined {
  if (outcome.failed) return undefined;
  const matching = params?.response === responseOf(outcome.result) ? params : undefined;
  const error = matching?.properties.$feature_flag_error;
  if (error !== undefined && error !== 'flag_missing') return undefined;
  if (outcome.result === undefined && error !== 'flag_missing') return undefined;
  return { params: matching };
}

/**
 * The flag result cache (opt-in with a TTL): `<prefix>:{<sha-256 of every input>}` to the
 * answer and the `$feature_flag_called` properties posthog-node built for it.
 *
 * - The key covers the host, project, flag key, distinct id, groups, person properties,
 *   group properties, `onlyEvaluateLocally`, `disableGeoip` and device id (canonical JSON,
 *   sorted keys, then SHA-256): 64 hex characters whatever the inputs, as its own hash tag
 *   (entries spread over a Redis Cluster's slots; a probe after a failure finds the node).
 * - A hit that must send `$feature_flag_called` replays the saved properties through
 *   posthog-node's own `_captureFlagCalledEventIfNeeded`: the same event, the same
 *   per-distinct-id dedupe. An entry saved without them (events were off) is a miss then.
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
  private recorder: FlagCallRecorder | undefined;

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

  /** Starts watching the client's `$feature_flag_called` calls. */
  attach(recorder: FlagCallRecorder): void {
    this.recorder = recorder;
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
   * stored; with the `$feature_flag_called` properties behind it (those posthog-node
   * built on a miss, or the entry's on a hit), so a layer in front (the local
   * evaluation memo) can keep them without recording the call again: two recordings of
   * one call would look like two concurrent calls, and neither would keep them.
   */
  async evaluate(
    request: FlagRequest,
    sendEvents: boolean,
    evaluate: () => Promise<Evaluation>,
  ): Promise<{ outcome: Evaluation; params: FlagCalledParams | undefined }> {
    const recorder = this.recorder;
    if (!recorder || recorder.client.hasFlagOverrides) {
      return { outcome: await evaluate(), params: undefined };
    }
    const { key, distinctId, inputs } = request;
    let cacheKey: string;
    try {
      cacheKey = await this.keyFor(key, distinctId, inputs, request.deviceId);
    } catch {
      // Inputs that are not JSON (a BigInt...): not cacheable.
      return { outcome: await evaluate(), params: undefined };
    }
    const read = await this.store.run('read flag result', (s) => readKey(s.keyv, cacheKey), {
      key: cacheKey,
      write: false,
    });
    const entry = read.ok ? parseEntry(read.value) : undefined;
    if (entry && (!sendEvents || entry.e)) {
      const result = entry.r ?? undefined;
      if (sendEvents && entry.e) recorder.replay(request, result, { ...entry.e });
      const params: FlagCalledParams | undefined = entry.e
        ? {
            distinctId,
            key,
            response: responseOf(result),
            groups: inputs.groups,
            disableGeoip: inputs.disableGeoip,
            properties: { ...entry.e },
          }
        : undefined;
      return { outcome: { result: result && { ...result }, failed: false }, params };
    }

    const { outcome, params } = await recorder.record(
      { key, distinctId, groups: inputs.groups },
      sendEvents,
      evaluate,
    );
    const keep = read.ok ? cacheable(outcome, params) : undefined;
    if (!keep) return { outcome, params };
    const value: ResultEntry = structuredClone({
      v: RESULT_FORMAT,
      r: outcome.result ?? null,
      e: keep.params ? keep.params.properties : null,
    });
    void this.store.run('write flag result', (s) => s.keyv.set(cacheKey, value, this.ttlMs), {
      key: cacheKey,
      write: true,
    });
    return { outcome, params };
  }
}
