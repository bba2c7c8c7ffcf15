// What the API does, written once: functions on a kit's parts and a scope, and the
// base class through which a kit (the current context) and a request's handle (its
// own request) reach them. The module-level sugar forwards to a kit or a handle.
import { FeatureFlagEvaluations, type PostHog, uuidv7 } from 'posthog-node';
import type {
  AllFlagsAndPayloads,
  CaptureExceptionOptions,
  CaptureOptions,
  DistinctIdOptions,
  EvaluateFlagsOptions,
  FlagOptions,
  FlagResult,
  FlagSnapshot,
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
import {
  canonicalJson,
  type FlagAnswer,
  type FlagInputs,
  responseOf,
} from './flags/result-cache.ts';
import { FlagReader, FlagState, type FlagSubject, Snapshot } from './flags/snapshot.ts';
import type { ResolvedSettings } from './settings.ts';
import { reportedByTransport, type Transport } from './transport.ts';
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

/** The scope's own properties: its tags, session and device. */
function contextProperties(scope: Scope): Properties {
  const props: Properties = scope.tags;
  // posthog-python's list of the context's tag keys.
  const keys = Object.keys(props);
  if (keys.length > 0) props.$context_tags = keys;
  const sessionId = scope.sessionId;
  if (sessionId !== undefined) props.$session_id = sessionId;
  const deviceId = scope.deviceId;
  if (deviceId !== undefined) props.$device_id = deviceId;
  return props;
}

/**
 * An event's properties: the flags (the explicit `flags` snapshot, else those read in the
 * request for this distinct id), then the scope's tags, session and device, then the
 * explicit properties (which win), as posthog-node layers `flags` under properties.
 */
function properties(
  parts: KitParts,
  scope: Scope | undefined,
  distinctId: string | undefined,
  options: { properties?: Properties | undefined; flags?: unknown } | undefined,
): Properties {
  const explicit = options?.properties;
  const flags = options?.flags;
  let props: Properties | undefined;
  if (flags instanceof Snapshot) {
    props = {};
    flags.eventProperties(props);
  } else if (flags === undefined && scope && parts.settings.featureFlagsOnEvents) {
    const read = scope.flagReads;
    if (read) {
      props = {};
      read.addTo(props, distinctId);
    }
  }
  if (!scope) return props ? Object.assign(props, explicit) : (explicit ?? {});
  // The context's object is the event's (it is a fresh copy): the flags' few keys go under it.
  const context = contextProperties(scope);
  if (props) {
    for (const key in props) if (!(key in context)) context[key] = props[key];
  }
  return explicit ? Object.assign(context, explicit) : context;
}

/** posthog-node's own snapshot, passed through to it as `flags`. */
const nodeFlags = (flags: unknown) => (flags instanceof FeatureFlagEvaluations ? flags : undefined);

/** Captures an event in a scope. */
export function captureIn(
  parts: KitParts,
  scope: Scope | undefined,
  event: string,
  options?: CaptureOptions,
): void {
  const client = parts.client;
  if (!client) return;
  const known = options?.distinctId ?? scope?.distinctId;
  const distinctId = known ?? scope?.personlessId;
  // The deprecated `sendFeatureFlags`: every flag of the user, read the kit's way, then the event.
  const legacy = options as { sendFeatureFlags?: boolean | undefined } | undefined;
  if (legacy?.sendFeatureFlags && options?.flags === undefined && known !== undefined) {
    const flags = snapshotIn(parts, scope, { distinctId, groups: options?.groups });
    const later: CaptureOptions = { ...options, flags };
    const send = () => captureIn(parts, scope, event, later);
    client.addPendingPromise(flags.all().then(send, send));
    return;
  }
  const props = properties(parts, scope, distinctId, options);
  // One personless id for all of an anonymous request's events, still without a person.
  if (known === undefined && distinctId !== undefined) props.$process_person_profile = false;
  client.capture({
    event,
    distinctId: distinctId as string,
    properties: props,
    groups: options?.groups ?? scope?.groups,
    timestamp: options?.timestamp,
    uuid: options?.uuid,
    flags: nodeFlags(options?.flags),
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
  const known = options?.distinctId ?? scope?.distinctId;
  const distinctId = known ?? scope?.personlessId;
  const props = properties(parts, scope, distinctId, options);
  if (known === undefined && distinctId !== undefined) props.$process_person_profile = false;
  client.captureException(error, distinctId, props, uuid, nodeFlags(options?.flags));
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
  // Once per cause and kit: anonymous traffic would say it on every call.
  parts.errors.outage(
    `no-distinct-id:${what}`,
    undefined,
    `${what} skipped: no distinct id given and none in the context (a flag answers its default); pass { distinctId }, run it in withContext({ distinctId }), or send posthog-js's X-POSTHOG-DISTINCT-ID header (see "Connecting posthog-js")`,
  );
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
    // A refused batch the transport has said already (once per outage): raise mode still throws.
    if (reportedByTransport(error) && parts.errors.mode !== 'raise') return;
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

let opaque = 0;

/** Whose flags and with which inputs: the options, else the scope (distinct id, groups, device). */
function subjectOf(
  parts: KitParts,
  scope: Scope | undefined,
  options: FlagOptions | undefined,
): FlagSubject | undefined {
  const distinctId = options?.distinctId ?? scope?.distinctId;
  if (distinctId === undefined || distinctId === '') return undefined;
  const deviceId = scope?.deviceId;
  const groups = stringGroups(options?.groups ?? scope?.groups);
  const person = options?.personProperties;
  const groupProperties = options?.groupProperties;
  const inputs: FlagInputs = {
    groups,
    personProperties: deviceId === undefined ? person : { $device_id: deviceId, ...person },
    groupProperties,
    onlyEvaluateLocally: options?.onlyEvaluateLocally,
    disableGeoip: options?.disableGeoip ?? parts.settings.disableGeoip,
  };
  let rest = '';
  if (groups || person || groupProperties) {
    try {
      rest = canonicalJson([groups, person, groupProperties]);
    } catch {
      // Inputs that are not JSON (a BigInt...): shared with nothing.
      rest = `\u0001${++opaque}`;
    }
  }
  // The common case (a distinct id, no other input) is keyed by the id itself, whose hash the
  // string keeps for every later look-up; every other key has a NUL, which the plain form has not.
  const plain =
    deviceId === undefined &&
    inputs.onlyEvaluateLocally === undefined &&
    options?.disableGeoip === undefined &&
    rest === '' &&
    !distinctId.includes('\u0000');
  const inputsKey = plain
    ? distinctId
    : `${distinctId}\u0000${deviceId ?? ''}\u0000${inputs.onlyEvaluateLocally ?? ''}\u0000${inputs.disableGeoip}\u0000${rest}`;
  return { distinctId, inputs, deviceId, inputsKey };
}

/** The kit's flag reader, made with the client on first use. */
function readerOf(parts: KitParts): FlagReader | undefined {
  const client = parts.client;
  if (!client) return undefined;
  client.reader ??= new FlagReader({
    client,
    caches: parts.flags,
    flagFailures: () => parts.transport.flagFailures,
    errors: parts.errors,
    budgetMs: parts.settings.featureFlagsBudgetMs,
    local:
      parts.settings.personalApiKey !== undefined ||
      parts.settings.flagDefinitionsSource === 'store',
  });
  return client.reader as FlagReader;
}

const NO_SUBJECT: FlagSubject = {
  distinctId: '',
  inputs: {
    groups: undefined,
    personProperties: undefined,
    groupProperties: undefined,
    onlyEvaluateLocally: undefined,
    disableGeoip: undefined,
  },
  deviceId: undefined,
  inputsKey: '',
};

/**
 * The state flags are read from: inside a request, the request's for these inputs (its
 * reads consistent, on its events, within its budget); elsewhere a new one, asking
 * posthog-node for `fetchKeys` only.
 */
function stateIn(
  parts: KitParts,
  scope: Scope | undefined,
  options: FlagOptions | undefined,
  fetchKeys: string[] | undefined,
): FlagState {
  const reader = readerOf(parts);
  const subject = reader && subjectOf(parts, scope, options);
  if (reader && !subject) reader.anonymous();
  if (!reader || !subject) {
    return new FlagState(undefined, NO_SUBJECT, { context: () => undefined });
  }
  const request = scope?.flagReads;
  const existing = request?.state(subject);
  if (existing) return existing;
  const context = () => (scope ? contextProperties(scope) : undefined);
  if (!request) return new FlagState(reader, subject, { context, fetchKeys });
  return request.add(new FlagState(reader, subject, { context, clock: request.clock }));
}

/** A snapshot of the scope's (or the given) user's flags. */
function snapshotIn(
  parts: KitParts | undefined,
  scope: Scope | undefined,
  options?: EvaluateFlagsOptions,
): Snapshot {
  const state = parts
    ? stateIn(parts, scope, options, options?.flagKeys)
    : new FlagState(undefined, NO_SUBJECT, { context: () => undefined });
  return new Snapshot(state, {
    sendEvents: options?.sendFeatureFlagEvents,
    flagKeys: options?.flagKeys,
  });
}

/** One flag read: the request's snapshot inside a request, else one that asks for this flag only. */
function readIn(
  parts: KitParts | undefined,
  scope: Scope | undefined,
  key: string,
  options: FlagOptions | undefined,
): Snapshot {
  const state = parts
    ? stateIn(parts, scope, options, [key])
    : new FlagState(undefined, NO_SUBJECT, { context: () => undefined });
  return new Snapshot(state);
}

/**
 * One read that counts for the events (`featureEnabled`, `getFeatureFlag`), straight on
 * the state: the request path's common case, without a snapshot or an async frame.
 */
function readValue(
  parts: KitParts | undefined,
  scope: Scope | undefined,
  key: string,
  options: FlagOptions | undefined,
): FlagAnswer | Promise<FlagAnswer> {
  if (!parts) return NO_ANSWER;
  const state = stateIn(parts, scope, options, [key]);
  const send = options?.sendFeatureFlagEvents;
  const answer = state.answer(key, send);
  if (answer instanceof Promise) {
    return answer.then((a) => {
      state.access(key, a, send);
      return a;
    });
  }
  state.access(key, answer, send);
  return answer;
}

const NO_ANSWER: FlagAnswer = { result: undefined, event: undefined, failed: false };
// The memo's answers carry `enabled` themselves: the result is another object, cold in memory.
const enabledOf = (a: FlagAnswer) => a.enabled ?? a.result?.enabled ?? false;
const answerValue = (a: FlagAnswer) => responseOf(a.result);

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

  async evaluateFlags(options?: EvaluateFlagsOptions): Promise<FlagSnapshot> {
    return snapshotIn(this.#parts, this.#scope(), options);
  }

  featureEnabled(key: string, options?: FlagOptions): Promise<boolean> {
    try {
      const answer = readValue(this.#parts, this.#scope(), key, options);
      return answer instanceof Promise
        ? answer.then(enabledOf)
        : Promise.resolve(enabledOf(answer));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  getFeatureFlag(key: string, options?: FlagOptions): Promise<FlagValue | undefined> {
    try {
      const answer = readValue(this.#parts, this.#scope(), key, options);
      return answer instanceof Promise
        ? answer.then(answerValue)
        : Promise.resolve(answerValue(answer));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async getFeatureFlagResult(key: string, options?: FlagOptions): Promise<FlagResult | undefined> {
    const result = await readIn(this.#parts, this.#scope(), key, options).result(key, options);
    return (
      result && {
        key: result.key,
        enabled: result.enabled,
        variant: result.variant,
        payload: result.payload as JsonValue | undefined,
        reason: result.reason,
      }
    );
  }

  getFeatureFlagPayload(key: string, options?: FlagOptions): Promise<JsonValue | undefined> {
    return readIn(this.#parts, this.#scope(), key, options).getFlagPayload(key);
  }

  async getAllFlags(options?: FlagOptions): Promise<Record<string, FlagValue>> {
    return (await this.getAllFlagsAndPayloads(options)).featureFlags;
  }

  getAllFlagsAndPayloads(options?: FlagOptions): Promise<AllFlagsAndPayloads> {
    return snapshotIn(this.#parts, this.#scope(), options).all();
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
