// The public API, once: the module-level sugar, a kit and a request's handle
// (`req.posthog`, `ctx.state.posthog`, `c.var.posthog`, `event.context.posthog`) all
// implement `PostHogApi`; a type-level test fails when one lacks a method.
import type { FeatureFlagEvaluations, PostHog } from 'posthog-node';
import type { Groups, Properties } from './types.ts';

/** A flag's value: off, on, or a variant. */
export type FlagValue = boolean | string;

/** A JSON value, as flag payloads are. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

/** A flag's full answer. */
export interface FlagResult {
  key: string;
  enabled: boolean;
  variant: string | undefined;
  payload: JsonValue | undefined;
  reason?: string | undefined;
}

/** Every flag's value and payload for one user. */
export interface AllFlagsAndPayloads {
  featureFlags: Record<string, FlagValue>;
  featureFlagPayloads: Record<string, JsonValue>;
}

/** Options of `capture`. Inside a request the context fills in what is not given. */
export interface CaptureOptions {
  /** @default the context's distinct id, else a personless event */
  distinctId?: string | undefined;
  /** Win over the context's tags. */
  properties?: Properties | undefined;
  /** @default the context's groups */
  groups?: Groups | undefined;
  /** @default now */
  timestamp?: Date | undefined;
  /** @default a new UUIDv7 */
  uuid?: string | undefined;
  /**
   * The flags to put on the event (`$feature/<key>`, `$active_feature_flags`): a snapshot
   * from `evaluateFlags()` (or a slice of it), or posthog-node's own. Inside a request
   * the flags read in it are put on its events without this; given, it wins.
   * @default inside a request, the flags read in it (see `featureFlagsOnEvents`)
   */
  flags?: FlagSnapshot | FeatureFlagEvaluations | undefined;
  /**
   * Evaluate every flag of the user and attach them to the event.
   * @deprecated Pass `flags` (a snapshot from `evaluateFlags()`); inside a request the flags
   *   read in it are on its events already. This one evaluates every flag for the event.
   * @default false
   */
  sendFeatureFlags?: boolean | undefined;
  /** @default the kit's `disableGeoip` */
  disableGeoip?: boolean | undefined;
}

/** Options of `captureException`. */
export interface CaptureExceptionOptions {
  /** @default the context's distinct id */
  distinctId?: string | undefined;
  /** Added to the `$exception` event; win over tags. */
  properties?: Properties | undefined;
  /**
   * The flags to put on the event, as for `capture`.
   * @default inside a request, the flags read in it
   */
  flags?: FlagSnapshot | FeatureFlagEvaluations | undefined;
}

/** Options of `identify`. */
export interface IdentifyOptions {
  /** Person properties to set (`$set`). */
  properties?: Properties | undefined;
  /** Person properties to set once (`$set_once`). */
  setOnce?: Properties | undefined;
  /** @default the kit's `disableGeoip` */
  disableGeoip?: boolean | undefined;
}

/** Options naming whose data a call is about. */
export interface DistinctIdOptions {
  /** @default the context's distinct id */
  distinctId?: string | undefined;
}

/** Options of `groupIdentify`. */
export interface GroupIdentifyOptions extends DistinctIdOptions {
  /** Group properties to set. */
  properties?: Properties | undefined;
}

/** Options of the flag functions. */
export interface FlagOptions {
  /** @default the context's distinct id */
  distinctId?: string | undefined;
  /** @default the context's groups */
  groups?: Groups | undefined;
  personProperties?: Properties | undefined;
  groupProperties?: Record<string, Properties> | undefined;
  /**
   * Never ask PostHog; answer from local definitions or not at all.
   * @default false
   */
  onlyEvaluateLocally?: boolean | undefined;
  /**
   * Record `$feature_flag_called`.
   * @default true
   */
  sendFeatureFlagEvents?: boolean | undefined;
  /** @default the kit's `disableGeoip` */
  disableGeoip?: boolean | undefined;
}

/** Options of one read from a snapshot. */
export interface FlagReadOptions {
  /**
   * Record `$feature_flag_called` for this read (once per user, flag and value).
   * @default the snapshot's, else posthog-node's `sendFeatureFlagEvent` option, else true
   */
  sendFeatureFlagEvents?: boolean | undefined;
}

/** Options of `evaluateFlags`. */
export interface EvaluateFlagsOptions extends FlagOptions {
  /**
   * Only these flags: others read as undefined. Outside a request, the one `/flags` request
   * of remote evaluation asks for these only.
   * @default every flag
   */
  flagKeys?: string[] | undefined;
}

/**
 * One user's flags, shaped like posthog-node's `FeatureFlagEvaluations` but lazy: a flag
 * is evaluated the first time it is read (so reads are awaited), then answers the same
 * for the snapshot's life. Inside a request `evaluateFlags()` gives the request's flags:
 * every read there is consistent for the rest of the request, one `/flags` request serves
 * them all (remote evaluation), and the request's events carry them.
 */
export interface FlagSnapshot {
  /** Whether a flag is on; `defaultValue` (false) when it has no value. Records `$feature_flag_called`. */
  isEnabled(
    key: string,
    options?: FlagReadOptions & { defaultValue?: boolean | undefined },
  ): Promise<boolean>;
  /** A flag's value: true/false, a variant, or undefined. Records `$feature_flag_called`. */
  getFlag(key: string, options?: FlagReadOptions): Promise<FlagValue | undefined>;
  /** A flag's payload; not a read for `onlyAccessed()`, no event. */
  getFlagPayload(key: string): Promise<JsonValue | undefined>;
  /** A copy holding only these flags (evaluated now if need be, without events), for `capture({ flags })`. */
  only(keys: string[]): Promise<FlagSnapshot>;
  /** A copy holding only the flags read so far with `isEnabled`/`getFlag`, for `capture({ flags })`. */
  onlyAccessed(): FlagSnapshot;
}

/**
 * What you can do with PostHog: the same methods on the module (`capture(...)`), on a
 * kit (`kit.capture(...)`) and on a request's handle (`req.posthog.capture(...)`).
 * The module and a kit use the current context (inside a request: the request's ids and
 * tags); a handle is bound to its request, with or without AsyncLocalStorage.
 */
export interface PostHogApi {
  /** Captures an event with the context's ids and tags. */
  capture(event: string, options?: CaptureOptions): void;
  /** Captures an event and sends it now; in `raise` mode a failed send throws. */
  captureImmediate(event: string, options?: CaptureOptions): Promise<void>;
  /**
   * Captures an error as `$exception` with the context's ids and tags, once per error
   * object. Returns the event's uuid, or undefined when skipped.
   */
  captureException(error: unknown, options?: CaptureExceptionOptions): string | undefined;
  /** Sets person properties and links the distinct id (or the context's) to the person. */
  identify(distinctId?: string, options?: IdentifyOptions): void;
  /** Sets person properties (`$set`). */
  set(properties: Properties, options?: DistinctIdOptions): void;
  /** Sets person properties once (`$set_once`). */
  setOnce(properties: Properties, options?: DistinctIdOptions): void;
  /** Links `alias` to the distinct id (or the context's). */
  alias(alias: string, options?: DistinctIdOptions): void;
  /** Sets a group's properties. */
  groupIdentify(groupType: string, groupKey: string | number, options?: GroupIdentifyOptions): void;
  /**
   * The context's (or the given) user's flags as a lazy snapshot; inside a request, the
   * request's (see `FlagSnapshot`).
   */
  evaluateFlags(options?: EvaluateFlagsOptions): Promise<FlagSnapshot>;
  /** Whether a flag is on for the context's (or the given) user; false when unknown. */
  featureEnabled(key: string, options?: FlagOptions): Promise<boolean>;
  /** A flag's value: true/false, a variant, or undefined when it cannot be evaluated. */
  getFeatureFlag(key: string, options?: FlagOptions): Promise<FlagValue | undefined>;
  /** A flag's value, variant, payload and reason. */
  getFeatureFlagResult(key: string, options?: FlagOptions): Promise<FlagResult | undefined>;
  /** A flag's payload, without recording `$feature_flag_called`. */
  getFeatureFlagPayload(key: string, options?: FlagOptions): Promise<JsonValue | undefined>;
  /** Every flag's value for the user. */
  getAllFlags(options?: FlagOptions): Promise<Record<string, FlagValue>>;
  /** Every flag's value and payload for the user. */
  getAllFlagsAndPayloads(options?: FlagOptions): Promise<AllFlagsAndPayloads>;
  /** Sends queued events now; a failure goes through the error mode (`raise` throws). */
  flush(): Promise<void>;
  /** Whether events are sent (a project key is set and the kit is not turned off). */
  isEnabled(): boolean;
  /** The posthog-node client; undefined when disabled. */
  getClient(): PostHog | undefined;
}
