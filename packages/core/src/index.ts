export {
  type ContextData,
  ContextStore,
  defaultContextStorage,
  Scope,
  type WithContextOptions,
} from './context.ts';
export {
  alias,
  capture,
  captureException,
  captureImmediate,
  configure,
  featureEnabled,
  flush,
  getAllFlags,
  getAllFlagsAndPayloads,
  getClient,
  getContextDistinctId,
  getContextSessionId,
  getFeatureFlag,
  getFeatureFlagPayload,
  getFeatureFlagResult,
  getKit,
  getTags,
  groupIdentify,
  identify,
  identifyContext,
  isEnabled,
  resetKit,
  set,
  setCaptureExceptionCodeVariablesContext,
  setCodeVariablesIgnorePatternsContext,
  setCodeVariablesMaskPatternsContext,
  setContextSession,
  setOnce,
  shutdown,
  tag,
  withContext,
} from './default.ts';
export {
  type ErrorMode,
  ErrorReporter,
  type KitLogger,
  PostHogKitError,
  redact,
} from './errors.ts';
export {
  defaultShouldCaptureError,
  markCaptured,
  statusOfError,
  wasCaptured,
} from './exceptions.ts';
export {
  type CaptureExceptionOptions,
  type CaptureOptions,
  createPostHogKit,
  type DistinctIdOptions,
  type FlagOptions,
  type FlagResult,
  type FlagValue,
  type GroupIdentifyOptions,
  type IdentifyOptions,
  type JsonValue,
  PostHogKit,
} from './kit.ts';
export {
  type Closable,
  installShutdownHooks,
  type ShutdownHooksOptions,
  shutdownOnClose,
} from './lifecycle.ts';
export {
  type MiddlewareOptions,
  type RequestOptions,
  RequestScope,
  RequestTracker,
  sanitizeHeaderId,
} from './request.ts';
export {
  DEFAULT_HOST,
  ENV_VARS,
  type PostHogKitOptions,
  parseSettings,
  type ResolvedSettings,
} from './settings.ts';
export type {
  ContextStorage,
  Groups,
  Properties,
  RequestHooks,
  RequestInfo,
  ResolvedUser,
} from './types.ts';
