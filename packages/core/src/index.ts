export type {
  AllFlagsAndPayloads,
  CaptureExceptionOptions,
  CaptureOptions,
  DistinctIdOptions,
  EvaluateFlagsOptions,
  FlagOptions,
  FlagReadOptions,
  FlagResult,
  FlagSnapshot,
  FlagValue,
  GroupIdentifyOptions,
  IdentifyOptions,
  JsonValue,
  PostHogApi,
} from './api.ts';
export {
  type ContextData,
  ContextStore,
  defaultContextStorage,
  type WithContextOptions,
} from './context.ts';
export {
  alias,
  capture,
  captureException,
  captureImmediate,
  configure,
  evaluateFlags,
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
  installShutdownHooks,
  isEnabled,
  resetKit,
  set,
  setCaptureExceptionCodeVariablesContext,
  setCodeVariablesIgnorePatternsContext,
  setCodeVariablesMaskPatternsContext,
  setContextSession,
  setOnce,
  shutdown,
  shutdownOnClose,
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
  CODE_VARIABLES_REDACTED_VALUE,
  CODE_VARIABLES_TOO_LONG_VALUE,
  DEFAULT_CODE_VARIABLES_MASK_PATTERNS,
  defaultShouldCaptureError,
  isInAppFile,
  markCaptured,
  statusOfError,
  wasCaptured,
} from './exceptions.ts';
export type { FlagDefinitionsSource, FlagsStatus } from './flags/status.ts';
export { createPostHogKit, PostHogKit } from './kit.ts';
export type { Closable, Shutdownable, ShutdownHooksOptions } from './lifecycle.ts';
export { flushWithin } from './request/close.ts';
export { FetchRequestInfo } from './request/fetch.ts';
export type { PostHogHandle } from './request/handle.ts';
export { type NodeIncomingMessage, NodeRequestInfo } from './request/node.ts';
export { requestOptions } from './request/options.ts';
export { sanitizeHeaderId } from './request/posthog-js.ts';
export {
  type MiddlewareOptions,
  type Outcome,
  type RequestOptions,
  RequestTracker,
  type SentResponse,
  type TrackedRequest,
} from './request/tracker.ts';
export { maskUrl } from './request/url.ts';
export {
  DEFAULT_HOST,
  ENV_VARS,
  type PostHogKitOptions,
  parseSettings,
  type ResolvedSettings,
} from './settings.ts';
export type {
  ContextStorage,
  ExceptionMechanism,
  Groups,
  Properties,
  RequestHooks,
  RequestInfo,
  ResolvedUser,
} from './types.ts';
