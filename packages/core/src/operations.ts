// What the API does, written once: functions on a kit's parts and a scope, and the
// base class through which a kit (the current context) and a request's handle (its
// own request) reach them. The module-level sugar forwards to a kit or a handle.
import { type PostHog, uuidv7 } from 'posthog-node';
import type {
  AllFlagsAndPayloads,
  CaptureExceptionOptions,
  CaptureOptions,
  DistinctIdOptions,
  FlagOptions,
  FlagResult,
  FlagValue,
  GroupIdentifyOptions,
  IdentifyOptions,
  JsonValue,
  PostHogApi,
} from './api.ts';
import type { Scope } from './context.ts';
import type { ErrorReporter } from './errors.ts';
import type { ExceptionPipeline } from './exception-pipeline.ts';
import { markCaptured, wasCaptured } from './exceptions.ts';
import type { FlagCaches, FlagRecordingPostHog } from './flags/index.ts';
import type { ResolvedSettings } from './settings.ts';
import type { Transport } from './transport.ts';
import type { ExceptionMechanism, Groups, Properties } from './types.ts';

/** A kit's working parts: what every operation needs. */
export interface KitParts {
  /** Undefined when the kit is disabled: every operation is then a cheap no-op. */
  readonly client: FlagRecordingPostHog | undefined;
  readonly settings: ResolvedSettings;
  readonly errors: ErrorReporter;
  readonly transport: Transport;
  readonly flags: FlagCaches | undefined;
  readonly exceptions: ExceptionPipeline;
}

// ----- events -----

/** Tags, session and device of the scope, then the explicit properties (which win). */
function properties(scope: Scope | undefined, explicit: Properties | undefined): Properties {
  if (!scope) return explicit ?? {};
  const props: Properties = scope.tags;
  const sessionId = scope.sessionId;
  if (sessionId !== undefined) props.$session_id = sessionId;
  const deviceId = scope.deviceId;
  if (deviceId !== undefined) props.$device_id = deviceId;
  return explicit ? Object.assign(props, explicit) : props;
}

/** Captures an event in a scope. */
export function captureIn(
  parts: KitParts,
  scope: Scope | undefined,
  event: string,
  options?: CaptureOptions,
): void {
  const client = parts.client;
  if (!client) return;
  client.capture({
    event,
    distinctId: (options?.distinctId ?? scope?.distinctId) as string,
    properties: properties(scope, options?.properties),
    groups: options?.groups ?? scope?.groups,
    timestamp: options?.timestamp,
    uuid: options?.uuid,
    sendFeatureFlags: options?.sendFeatureFlags,
    disableGeoip: options?.disableGeoip ?? parts.settings.disableGeoip,
  });
}

/** Captures an error once per error object, in a scope; the event's uuid, or undefined. */
export function captureExceptionIn(
  parts: KitParts,
  scope: Scope | undefined,
  error: unknown,
  options?: CaptureExceptionOptions,
  mechanism?: ExceptionMechanism,
): string | undefined {
  const client = parts.client;
  if (!client || wasCaptured(error)) return undefined;
  const uuid = uuidv7();
  parts.exceptions.note(uuid, error, scope, mechanism);
  client.captureException(
    error,
    options?.distinctId ?? scope?.distinctId,
    properties(scope, options?.properties),
    uuid,
  );
  // After the call: posthog-node itself skips errors that carry the mark.
  markCaptured(error);
  return uuid;
}

function requireId(
  parts: KitParts,
  distinctId: string | undefined,
  what: string,
): distinctId is string {
  if (distinctId !== undefined && distinctId !== '') return true;
  parts.errors.debug(`${what} skipped: no distinct id given and none in the context`);
  return false;
}

function personEvent(
  parts: KitParts,
  kind: '$set' | '$set_once',
  props: Properties,
  distinctId: string | undefined,
): void {
  const client = parts.client;
  if (!client || !requireId(parts, distinctId, kind)) return;
  client.capture({ distinctId, event: '$set', properties: { [kind]: props } });
}

/** Sends queued events now; a failure goes through the error mode. */
export async function flushParts(parts: KitParts): Promise<void> {
  const client = parts.client;
  if (!client) return;
  try {
    await client.flush();
  } catch (error) {
    parts.errors.foreground('flush', error);
  }
}

// ----- flags -----

function stringGroups(groups: Groups | undefined): Record<string, string> | undefined {
  if (!groups) return undefined;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(groups)) out[k] = String(val);
  return out;
}

function flagOptions(parts: KitParts, options: FlagOptions | undefined, scope: Scope | undefined) {
  const deviceId = scope?.deviceId;
  const personProperties =
    deviceId === undefined
      ? options?.personProperties
      : { $device_id: deviceId, ...options?.personProperties };
  return {
    groups: stringGroups(options?.groups ?? scope?.groups),
    personProperties: personProperties as Record<string, string> | undefined,
    groupProperties: options?.groupProperties as Record<string, Record<string, string>> | undefined,
    onlyEvaluateLocally: options?.onlyEvaluateLocally,
    sendFeatureFlagEvents: options?.sendFeatureFlagEvents,
    disableGeoip: options?.disableGeoip ?? parts.settings.disableGeoip,
  };
}

async function flagResultIn(
  parts: KitParts,
  scope: Scope | undefined,
  key: string,
  options?: FlagOptions,
): Promise<FlagResult | undefined> {
  const client = parts.client;
  if (!client) return undefined;
  const distinctId = options?.distinctId ?? scope?.distinctId;
  if (!requireId(parts, distinctId, 'flag look-up')) return undefined;
  const inputs = flagOptions(parts, options, scope);
  const evaluate = async () => {
    const failuresBefore = parts.transport.flagFailures;
    const result = await client.getFeatureFlagResult(key, distinctId, inputs);
    const failed = parts.transport.flagFailures > failuresBefore;
    if (result === undefined && failed) {
      parts.errors.foreground(
        'flags',
        undefined,
        `flag "${key}": PostHog could not be asked (see the previous error); answering undefined`,
      );
    }
    return { result, failed };
  };
  const flags = parts.flags;
  const result = flags
    ? await flags.evaluate(
        { key, distinctId, inputs, deviceId: scope?.deviceId },
        inputs.sendFeatureFlagEvents,
        evaluate,
      )
    : (await evaluate()).result;
  return result as FlagResult | undefined;
}

async function allFlagsIn(
  parts: KitParts,
  scope: Scope | undefined,
  options?: FlagOptions,
): Promise<AllFlagsAndPayloads> {
  const client = parts.client;
  const distinctId = options?.distinctId ?? scope?.distinctId;
  if (!client || !requireId(parts, distinctId, 'flag look-up')) {
    return { featureFlags: {}, featureFlagPayloads: {} };
  }
  const result = await client.getAllFlagsAndPayloads(
    distinctId,
    flagOptions(parts, options, scope),
  );
  return {
    featureFlags: (result.featureFlags ?? {}) as Record<string, FlagValue>,
    featureFlagPayloads: (result.featureFlagPayloads ?? {}) as Record<string, JsonValue>,
  };
}

// ----- the base of a kit and of a request's handle -----

const noScope = (): Scope | undefined => undefined;
let bind: (api: ScopedApi, parts: KitParts | undefined, scope: () => Scope | undefined) => void;
let partsOf: (api: ScopedApi) => KitParts | undefined;

/**
 * `PostHogApi` on a kit's parts and a scope: a kit uses the current context, a request's
 * handle its own request. Its state is private (`#`): nothing internal shows in an
 * editor's completion list or in the published types.
 */
export abstract class ScopedApi implements PostHogApi {
  #parts: KitParts | undefined;
  #scope: () => Scope | undefined = noScope;

  static {
    bind = (api, parts, scope) => {
      api.#parts = parts;
      api.#scope = scope;
    };
    partsOf = (api) => api.#parts;
  }

  capture(event: string, options?: CaptureOptions): void {
    const parts = this.#parts;
    if (parts) captureIn(parts, this.#scope(), event, options);
  }

  async captureImmediate(event: string, options?: CaptureOptions): Promise<void> {
    const parts = this.#parts;
    if (!parts?.client) return;
    captureIn(parts, this.#scope(), event, options);
    await flushParts(parts);
  }

  captureException(error: unknown, options?: CaptureExceptionOptions): string | undefined {
    const parts = this.#parts;
    return parts && captureExceptionIn(parts, this.#scope(), error, options);
  }

  identify(distinctId?: string, options?: IdentifyOptions): void {
    const parts = this.#parts;
    const client = parts?.client;
    if (!parts || !client) return;
    const id = distinctId ?? this.#scope()?.distinctId;
    if (!requireId(parts, id, 'identify')) return;
    client.identify({
      distinctId: id,
      properties: { $set: options?.properties ?? {}, $set_once: options?.setOnce ?? {} },
      disableGeoip: options?.disableGeoip ?? parts.settings.disableGeoip,
    });
  }

  set(props: Properties, options?: DistinctIdOptions): void {
    const parts = this.#parts;
    if (parts) personEvent(parts, '$set', props, options?.distinctId ?? this.#scope()?.distinctId);
  }

  setOnce(props: Properties, options?: DistinctIdOptions): void {
    const parts = this.#parts;
    if (parts) {
      personEvent(parts, '$set_once', props, options?.distinctId ?? this.#scope()?.distinctId);
    }
  }

  alias(alias: string, options?: DistinctIdOptions): void {
    const parts = this.#parts;
    const client = parts?.client;
    if (!parts || !client) return;
    const id = options?.distinctId ?? this.#scope()?.distinctId;
    if (requireId(parts, id, 'alias')) client.alias({ distinctId: id, alias });
  }

  groupIdentify(groupType: string, groupKey: string | number, options?: GroupIdentifyOptions) {
    this.#parts?.client?.groupIdentify({
      groupType,
      groupKey: String(groupKey),
      properties: options?.properties,
      distinctId: options?.distinctId ?? this.#scope()?.distinctId,
    });
  }

  async featureEnabled(key: string, options?: FlagOptions): Promise<boolean> {
    const value = await this.getFeatureFlag(key, options);
    return value !== undefined && value !== false;
  }

  async getFeatureFlag(key: string, options?: FlagOptions): Promise<FlagValue | undefined> {
    const result = await this.getFeatureFlagResult(key, options);
    if (!result) return undefined;
    return result.enabled ? (result.variant ?? true) : false;
  }

  async getFeatureFlagResult(key: string, options?: FlagOptions): Promise<FlagResult | undefined> {
    const parts = this.#parts;
    return parts ? flagResultIn(parts, this.#scope(), key, options) : undefined;
  }

  async getFeatureFlagPayload(key: string, options?: FlagOptions): Promise<JsonValue | undefined> {
    const result = await this.getFeatureFlagResult(key, {
      ...options,
      sendFeatureFlagEvents: false,
    });
    return result?.payload;
  }

  async getAllFlags(options?: FlagOptions): Promise<Record<string, FlagValue>> {
    return (await this.getAllFlagsAndPayloads(options)).featureFlags;
  }

  async getAllFlagsAndPayloads(options?: FlagOptions): Promise<AllFlagsAndPayloads> {
    const parts = this.#parts;
    return parts
      ? allFlagsIn(parts, this.#scope(), options)
      : { featureFlags: {}, featureFlagPayloads: {} };
  }

  flush(): Promise<void> {
    const parts = this.#parts;
    return parts ? flushParts(parts) : Promise.resolve();
  }

  isEnabled(): boolean {
    return this.#parts?.client !== undefined;
  }

  getClient(): PostHog | undefined {
    return this.#parts?.client;
  }
}

/** Connects a kit or a handle to its parts and its scope. @internal */
export function bindApi(
  api: ScopedApi,
  parts: KitParts | undefined,
  scope: () => Scope | undefined,
): void {
  bind(api, parts, scope);
}

/** A kit's or a handle's parts. @internal */
export function apiParts(api: ScopedApi): KitParts | undefined {
  return partsOf(api);
}
