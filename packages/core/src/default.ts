import type { ContextData, ContextStore, WithContextOptions } from './context.ts';
import {
  type CaptureExceptionOptions,
  type CaptureOptions,
  createPostHogKit,
  type DistinctIdOptions,
  defaultKitState,
  type FlagOptions,
  type FlagResult,
  type FlagValue,
  type GroupIdentifyOptions,
  type IdentifyOptions,
  type JsonValue,
  type PostHogKit,
  sharedContextStore,
} from './kit.ts';
import type { PostHogKitOptions } from './settings.ts';
import type { Properties } from './types.ts';

const state = defaultKitState();

/**
 * Sets the default kit the module-level functions use. A previous default kit is
 * shut down in the background (its queued events are flushed).
 */
export function configure(options?: PostHogKitOptions): PostHogKit {
  const previous = state.kit;
  state.kit = createPostHogKit(options);
  if (previous && previous !== state.kit) void previous.shutdown().catch(() => {});
  return state.kit;
}

/** The default kit, created from the environment on first use. */
export function getKit(): PostHogKit {
  state.kit ??= createPostHogKit();
  return state.kit;
}

/** The default kit's posthog-node client; undefined when disabled. */
export function getClient() {
  return getKit().client;
}

/** Whether the default kit sends events. */
export function isEnabled(): boolean {
  return getKit().enabled;
}

/** Shuts the default kit down and forgets it; the next call creates a new one. */
export async function resetKit(timeoutMs?: number): Promise<void> {
  const kit = state.kit;
  state.kit = undefined;
  await kit?.shutdown(timeoutMs);
}

// ----- sugar: the current request's kit (or the default kit), with the current context -----

/** Inside a request, the kit its middleware reports to; elsewhere the default kit. */
function active(): PostHogKit {
  return store().current()?.kit ?? getKit();
}

/** Captures an event with the current context's ids and tags. */
export function capture(event: string, options?: CaptureOptions): void {
  active().capture(event, options);
}

/** Captures an event and sends it now. */
export function captureImmediate(event: string, options?: CaptureOptions): Promise<void> {
  return active().captureImmediate(event, options);
}

/** Captures an error as `$exception` with the current context, once per error object. */
export function captureException(
  error: unknown,
  options?: CaptureExceptionOptions,
): string | undefined {
  return active().captureException(error, options);
}

/** Sets person properties for the distinct id (or the context's). */
export function identify(distinctId?: string, options?: IdentifyOptions): void {
  active().identify(distinctId, options);
}

/** Sets person properties (`$set`). */
export function set(properties: Properties, options?: DistinctIdOptions): void {
  active().set(properties, options);
}

/** Sets person properties once (`$set_once`). */
export function setOnce(properties: Properties, options?: DistinctIdOptions): void {
  active().setOnce(properties, options);
}

/** Links `alias` to the distinct id (or the context's). */
export function alias(aliasId: string, options?: DistinctIdOptions): void {
  active().alias(aliasId, options);
}

/** Sets a group's properties. */
export function groupIdentify(
  groupType: string,
  groupKey: string | number,
  options?: GroupIdentifyOptions,
): void {
  active().groupIdentify(groupType, groupKey, options);
}

/** Sends queued events now. */
export function flush(): Promise<void> {
  return active().flush();
}

/** Flushes and stops the default kit, within `timeoutMs`. */
export function shutdown(timeoutMs?: number): Promise<void> {
  return active().shutdown(timeoutMs);
}

/** Whether a flag is on for the context's (or the given) user. */
export function featureEnabled(key: string, options?: FlagOptions): Promise<boolean> {
  return active().featureEnabled(key, options);
}

/** A flag's value: true/false, a variant, or undefined. */
export function getFeatureFlag(key: string, options?: FlagOptions): Promise<FlagValue | undefined> {
  return active().getFeatureFlag(key, options);
}

/** A flag's value, variant, payload and reason. */
export function getFeatureFlagResult(
  key: string,
  options?: FlagOptions,
): Promise<FlagResult | undefined> {
  return active().getFeatureFlagResult(key, options);
}

/** A flag's payload. */
export function getFeatureFlagPayload(
  key: string,
  options?: FlagOptions,
): Promise<JsonValue | undefined> {
  return active().getFeatureFlagPayload(key, options);
}

/** Every flag's value. */
export function getAllFlags(options?: FlagOptions): Promise<Record<string, FlagValue>> {
  return active().getAllFlags(options);
}

/** Every flag's value and payload. */
export function getAllFlagsAndPayloads(options?: FlagOptions) {
  return active().getAllFlagsAndPayloads(options);
}

// ----- context -----

/** The store of the default kit, or the shared one before any kit exists. */
function store(): ContextStore {
  return state.kit?.context ?? sharedContextStore();
}

/** Runs `fn` in a new context; it inherits the current one unless `fresh`. */
export function withContext<R>(data: ContextData, fn: () => R, options?: WithContextOptions): R {
  return store().withContext(data, fn, options);
}

/** Adds a tag to the current context (no-op outside one). */
export function tag(key: string, value: unknown): void {
  store().current()?.tag(key, value);
}

/** Sets the distinct id of the current context. */
export function identifyContext(distinctId: string): void {
  const scope = store().current();
  if (scope) scope.own.distinctId = distinctId;
}

/** Sets the session id of the current context. */
export function setContextSession(sessionId: string): void {
  const scope = store().current();
  if (scope) scope.own.sessionId = sessionId;
}

/** The current context's distinct id. */
export function getContextDistinctId(): string | undefined {
  return store().current()?.distinctId;
}

/** The current context's session id. */
export function getContextSessionId(): string | undefined {
  return store().current()?.sessionId;
}

/** The current context's tags (a copy). */
export function getTags(): Properties {
  return store().current()?.tags ?? {};
}

/** Turns code variables on or off inside the current context. */
export function setCaptureExceptionCodeVariablesContext(enabled: boolean): void {
  const scope = store().current();
  if (scope) scope.own.captureExceptionCodeVariables = enabled;
}

/** Sets the mask patterns inside the current context (added to the built-in list). */
export function setCodeVariablesMaskPatternsContext(patterns: string[]): void {
  const scope = store().current();
  if (scope) scope.own.codeVariablesMaskPatterns = [...patterns];
}

/** Sets the ignore patterns inside the current context. */
export function setCodeVariablesIgnorePatternsContext(patterns: string[]): void {
  const scope = store().current();
  if (scope) scope.own.codeVariablesIgnorePatterns = [...patterns];
}
