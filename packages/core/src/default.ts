import type { PostHogApi } from './api.ts';
import type { ContextData, ContextStore, WithContextOptions } from './context.ts';
import { PostHogKitError } from './errors.ts';
import { processState, sharedContextStore } from './global.ts';
import { createPostHogKit, type PostHogKit } from './kit.ts';
import {
  type Closable,
  closeWith,
  registerShutdown,
  type ShutdownHooksOptions,
} from './lifecycle.ts';
import { patternProblem } from './patterns.ts';
import { isRequestOption, type PostHogKitOptions } from './settings.ts';
import type { Properties } from './types.ts';

const state = processState();
const defaultKit = () => state.kit as PostHogKit | undefined;

/** Makes `kit` the default one; it flushes on SIGTERM/SIGINT and at exit unless `shutdownHooks: false`. */
function setDefault(kit: PostHogKit, middlewareOptions: PostHogKitOptions | undefined): void {
  const previous = defaultKit();
  // A kit a middleware was built with stays alive: that middleware keeps using it.
  const pinned = state.middlewareOptions !== undefined;
  state.kit = kit;
  state.middlewareOptions = middlewareOptions as Record<string, unknown> | undefined;
  if (previous && previous !== kit && !pinned) void previous.shutdown().catch(() => {});
  if (kit.enabled && kit.settings.shutdownHooks) registerShutdown({ kit }, defaultKit);
}

/**
 * Sets the default kit the module-level functions use. A previous default kit is
 * shut down in the background (its queued events are flushed), unless a middleware
 * was set up with it, which keeps using it.
 */
export function configure(options?: PostHogKitOptions): PostHogKit {
  const kit = createPostHogKit(options);
  setDefault(kit, undefined);
  return kit;
}

/** The default kit, created from the environment on first use. */
export function getKit(): PostHogKit {
  const kit = defaultKit();
  if (kit) return kit;
  const created = createPostHogKit();
  setDefault(created, undefined);
  return created;
}

/** Shuts the default kit down and forgets it; the next call creates a new one. */
export async function resetKit(timeoutMs?: number): Promise<void> {
  const kit = defaultKit();
  state.kit = undefined;
  state.middlewareOptions = undefined;
  await kit?.shutdown(timeoutMs);
}

/** The options that belong to a kit, not to one middleware. @internal */
export const kitSettingKeys = (options: PostHogKitOptions): string[] =>
  Object.keys(options).filter(
    (k) => !isRequestOption(k) && options[k as keyof PostHogKitOptions] !== undefined,
  );

const isPlain = (x: unknown): x is Record<string, unknown> => {
  if (typeof x !== 'object' || x === null) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null || Array.isArray(x);
};

/** Equal settings: the same value, or plain objects and arrays with equal entries (functions, stores and loggers by identity). */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (!isPlain(a) || !isPlain(b) || Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (!sameValue(a[k], b[k])) return false;
  return true;
}

/**
 * The kit for a middleware given kit settings (`posthog({ host, apiKey })`): the
 * default kit, created from them. A second middleware with the same settings (Express's
 * `posthog(opts)` and `posthogErrorHandler(opts)`, two sub-apps) gets the same kit;
 * different settings are an error that says what to do. Per-request options
 * (`captureViews`, hooks) may differ freely. @internal
 */
export function middlewareKit(options: PostHogKitOptions, who: string): PostHogKit | undefined {
  const keys = kitSettingKeys(options);
  if (keys.length === 0) return undefined;
  const given = Object.fromEntries(keys.map((k) => [k, options[k as keyof PostHogKitOptions]]));
  const existing = defaultKit();
  const before = state.middlewareOptions;
  if (existing && before) {
    const all = new Set([...Object.keys(before), ...keys]);
    const differ = [...all].filter((k) => !sameValue(before[k], given[k]));
    if (differ.length === 0) return existing;
    throw new PostHogKitError(
      `${who}: ${differ.join(', ')} differ from the settings another middleware set the default kit up with; give every middleware the same settings, or create each kit with createPostHogKit() and pass { kit } to its middleware`,
      'settings',
    );
  }
  const kit = createPostHogKit(given);
  setDefault(kit, given);
  return kit;
}

/**
 * Flushes what is queued when the process is told to stop (SIGTERM/SIGINT) or runs out
 * of work, for `kit` or else the default kit. The default kit does this by itself;
 * call it for kits made with `createPostHogKit()`. Returns the function that removes it.
 */
export function installShutdownHooks(options: ShutdownHooksOptions = {}): () => void {
  return registerShutdown(options, defaultKit);
}

/**
 * Flushes and stops the kit (or the default kit) when a server closes:
 * `shutdownOnClose(app.listen(3000))`.
 */
export function shutdownOnClose<T extends Closable>(
  server: T,
  options: Pick<ShutdownHooksOptions, 'kit' | 'timeoutMs'> = {},
): T {
  return closeWith(server, options, defaultKit);
}

// ----- sugar: the current request's kit (or the default kit), with the current context -----

/** The store of the default kit, or the shared one before any kit exists. */
function store(): ContextStore {
  return defaultKit()?.context ?? sharedContextStore();
}

/** Inside a request, what its middleware reports to; elsewhere the default kit. */
function active(): PostHogApi {
  return store().current()?.api ?? getKit();
}

/** Captures an event with the current context's ids and tags. */
export const capture: PostHogApi['capture'] = (event, options) => active().capture(event, options);

/** Captures an event and sends it now. */
export const captureImmediate: PostHogApi['captureImmediate'] = (event, options) =>
  active().captureImmediate(event, options);

/** Captures an error as `$exception` with the current context, once per error object. */
export const captureException: PostHogApi['captureException'] = (error, options) =>
  active().captureException(error, options);

/** Sets person properties for the distinct id (or the context's). */
export const identify: PostHogApi['identify'] = (distinctId, options) =>
  active().identify(distinctId, options);

/** Sets person properties (`$set`). */
export const set: PostHogApi['set'] = (properties, options) => active().set(properties, options);

/** Sets person properties once (`$set_once`). */
export const setOnce: PostHogApi['setOnce'] = (properties, options) =>
  active().setOnce(properties, options);

/** Links `alias` to the distinct id (or the context's). */
export const alias: PostHogApi['alias'] = (aliasId, options) => active().alias(aliasId, options);

/** Sets a group's properties. */
export const groupIdentify: PostHogApi['groupIdentify'] = (groupType, groupKey, options) =>
  active().groupIdentify(groupType, groupKey, options);

/**
 * The current context's (or the given) user's flags as a lazy snapshot; inside a request,
 * the request's: reads consistent for its rest, on its events.
 */
export const evaluateFlags: PostHogApi['evaluateFlags'] = (options) =>
  active().evaluateFlags(options);

/** Whether a flag is on for the context's (or the given) user. */
export const featureEnabled: PostHogApi['featureEnabled'] = (key, options) =>
  active().featureEnabled(key, options);

/** A flag's value: true/false, a variant, or undefined. */
export const getFeatureFlag: PostHogApi['getFeatureFlag'] = (key, options) =>
  active().getFeatureFlag(key, options);

/** A flag's value, variant, payload and reason. */
export const getFeatureFlagResult: PostHogApi['getFeatureFlagResult'] = (key, options) =>
  active().getFeatureFlagResult(key, options);

/** A flag's payload. */
export const getFeatureFlagPayload: PostHogApi['getFeatureFlagPayload'] = (key, options) =>
  active().getFeatureFlagPayload(key, options);

/** Every flag's value. */
export const getAllFlags: PostHogApi['getAllFlags'] = (options) => active().getAllFlags(options);

/** Every flag's value and payload. */
export const getAllFlagsAndPayloads: PostHogApi['getAllFlagsAndPayloads'] = (options) =>
  active().getAllFlagsAndPayloads(options);

/** Sends queued events now (inside a request: its kit's). */
export const flush: PostHogApi['flush'] = () => active().flush();

/** Whether the current request's kit (else the default kit) sends events. */
export const isEnabled: PostHogApi['isEnabled'] = () => active().isEnabled();

/** The current request's (else the default kit's) posthog-node client; undefined when disabled. */
export const getClient: PostHogApi['getClient'] = () => active().getClient();

/** The module itself implements `PostHogApi`: this fails to compile when a function is missing. */
export const sugar = {
  capture,
  captureImmediate,
  captureException,
  identify,
  set,
  setOnce,
  alias,
  groupIdentify,
  evaluateFlags,
  featureEnabled,
  getFeatureFlag,
  getFeatureFlagResult,
  getFeatureFlagPayload,
  getAllFlags,
  getAllFlagsAndPayloads,
  flush,
  isEnabled,
  getClient,
} satisfies PostHogApi;

/** Flushes and stops the default kit (never a request's), within `timeoutMs`. */
export function shutdown(timeoutMs?: number): Promise<void> {
  return defaultKit()?.shutdown(timeoutMs) ?? Promise.resolve();
}

// ----- context -----

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
  store().current()?.update({ distinctId });
}

/** Sets the session id of the current context. */
export function setContextSession(sessionId: string): void {
  store().current()?.update({ sessionId });
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
  store().current()?.update({ captureExceptionCodeVariables: enabled });
}

/** A pattern set per context that cannot be used is said (capture then masks everything). */
function checkPatterns(patterns: string[], what: string): void {
  for (const pattern of patterns) {
    const problem = patternProblem(pattern);
    if (problem)
      getKit().errors.outage(
        `patterns:${what}`,
        undefined,
        `${what}: ${problem}; every variable of the exceptions captured in this context is masked`,
      );
  }
}

/** Sets the mask patterns inside the current context (added to the built-in list). */
export function setCodeVariablesMaskPatternsContext(patterns: string[]): void {
  checkPatterns(patterns, 'setCodeVariablesMaskPatternsContext');
  store()
    .current()
    ?.update({ codeVariablesMaskPatterns: [...patterns] });
}

/** Sets the ignore patterns inside the current context. */
export function setCodeVariablesIgnorePatternsContext(patterns: string[]): void {
  checkPatterns(patterns, 'setCodeVariablesIgnorePatternsContext');
  store()
    .current()
    ?.update({ codeVariablesIgnorePatterns: [...patterns] });
}
