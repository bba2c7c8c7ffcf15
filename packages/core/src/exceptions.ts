import type { BeforeSendFn, EventMessage } from 'posthog-node';
import { startAutocapture } from './autocapture.ts';
import type { Scope } from './context.ts';
import { DEFAULT_CODE_VARIABLES_MASK_PATTERNS, isInAppFile } from './frames.ts';
import type { PostHogKit } from './kit.ts';

export {
  CODE_VARIABLES_REDACTED_VALUE,
  CODE_VARIABLES_TOO_LONG_VALUE,
  DEFAULT_CODE_VARIABLES_MASK_PATTERNS,
  isInAppFile,
} from './frames.ts';

// posthog-node skips errors carrying this property (its Express handler, autocapture),
// so marking with it makes "captured once" hold across the kit and posthog-node alike.
const MARKER = '__posthog_previously_captured_error';
const captured = new WeakSet<object>();

const isObject = (x: unknown): x is object =>
  (typeof x === 'object' && x !== null) || typeof x === 'function';

/** Whether this error object was captured already (by the kit or posthog-node). */
export function wasCaptured(error: unknown): boolean {
  return (
    isObject(error) && (captured.has(error) || (error as Record<string, unknown>)[MARKER] === true)
  );
}

/** Marks an error object as captured; primitives cannot be marked and are captured each time. */
export function markCaptured(error: unknown): void {
  if (!isObject(error)) return;
  captured.add(error);
  try {
    Object.defineProperty(error, MARKER, { value: true, enumerable: false, configurable: true });
  } catch {
    // Frozen objects keep only the WeakSet mark.
  }
}

/**
 * The HTTP status an error carries, from the fields frameworks and libraries use:
 * `status`, `statusCode`, `status_code`, Boom's `output.statusCode`.
 */
export function statusOfError(error: unknown): number | undefined {
  if (!isObject(error)) return undefined;
  const e = error as {
    status?: unknown;
    statusCode?: unknown;
    status_code?: unknown;
    output?: { statusCode?: unknown };
  };
  for (const candidate of [e.status, e.statusCode, e.status_code, e.output?.statusCode]) {
    const n = typeof candidate === 'string' ? Number(candidate) : candidate;
    if (typeof n === 'number' && Number.isInteger(n) && n >= 100 && n <= 599) return n;
  }
  return undefined;
}

/** The default error policy: capture when the status is unknown or a server error. */
export function defaultShouldCaptureError(_error: unknown, status: number | undefined): boolean {
  return status === undefined || status >= 500;
}

// ----- the kit's exception pipeline -----

/** The Node-only code-variables entry, once loaded. */
type CodeVariablesModule = typeof import('./code-variables/index.ts');

/** How an exception reached the kit, for `$exception_list[0].mechanism`. */
export interface ExceptionMechanism {
  type: string;
  handled: boolean;
}

interface PendingException {
  error: unknown;
  scope: Scope | undefined;
  mechanism?: ExceptionMechanism | undefined;
}

interface KitExceptions {
  readonly cwd: string | undefined;
  /** Captures on their way to before_send, by event uuid. */
  readonly pending: Map<string, PendingException>;
  codeVariables: CodeVariablesModule | undefined;
  stopDebugger: (() => void) | undefined;
  stopAutocapture: (() => void) | undefined;
  closed: boolean;
}

// A capture whose event never reaches before_send (dropped before it) must not pin its error.
const MAX_PENDING = 1_000;
const states = new WeakMap<PostHogKit, KitExceptions>();

function currentDirectory(): string | undefined {
  try {
    return (globalThis as { process?: { cwd?: () => string } }).process?.cwd?.();
  } catch {
    return undefined;
  }
}

function stateOf(kit: PostHogKit): KitExceptions {
  let state = states.get(kit);
  if (!state) {
    state = {
      cwd: currentDirectory(),
      pending: new Map(),
      codeVariables: undefined,
      stopDebugger: undefined,
      stopAutocapture: undefined,
      closed: false,
    };
    states.set(kit, state);
  }
  return state;
}

function remember(state: KitExceptions, uuid: string, entry: PendingException): void {
  if (state.pending.size >= MAX_PENDING) {
    const oldest = state.pending.keys().next().value;
    if (oldest !== undefined) state.pending.delete(oldest);
  }
  state.pending.set(uuid, entry);
}

/**
 * Starts what the settings ask for: process autocapture, and the debugger that takes
 * code variables (its module is imported only here, only when the setting is on).
 * Settles when both are in place; never rejects.
 * @internal
 */
export function setupExceptions(kit: PostHogKit): Promise<void> {
  if (!kit.client) return Promise.resolve();
  const state = stateOf(kit);
  if (kit.settings.enableExceptionAutocapture) {
    state.stopAutocapture = startAutocapture(kit, (error, mechanism, scope) =>
      autocaptured(kit, error, mechanism, scope),
    );
  }
  if (!kit.settings.captureExceptionCodeVariables) return Promise.resolve();
  return import('./code-variables/index.ts').then(
    (module) => {
      if (state.closed) return;
      const attached = module.attachDebugger({
        wantsVariables: () => kit.context.current()?.captureExceptionCodeVariables !== false,
        isInApp: (file) => isInAppFile(file, kit.settings.inAppModules, state.cwd),
        inAppModules: kit.settings.inAppModules,
      });
      if (typeof attached === 'string') {
        kit.errors.warn(`code variables are off: ${attached}`);
        return;
      }
      state.codeVariables = module;
      state.stopDebugger = attached;
    },
    (error: unknown) => kit.errors.background('code-variables', error),
  );
}

/**
 * Stops autocapture and detaches the debugger (the last kit's detach closes it). Events
 * already on their way (the flush of a shutdown) still get their variables.
 * @internal
 */
export function teardownExceptions(kit: PostHogKit): void {
  const state = states.get(kit);
  if (!state || state.closed) return;
  state.closed = true;
  state.stopAutocapture?.();
  state.stopDebugger?.();
}

/**
 * Called by `captureException` with the event's uuid, before posthog-node builds the
 * event: before_send finds the error (for its code variables) and the scope by that uuid.
 * @internal
 */
export function noteException(
  kit: PostHogKit,
  uuid: string,
  error: unknown,
  scope: Scope | undefined,
): void {
  const state = states.get(kit);
  if (state?.codeVariables) remember(state, uuid, { error, scope });
}

function autocaptured(
  kit: PostHogKit,
  error: unknown,
  mechanism: ExceptionMechanism,
  scope: Scope | undefined,
): void {
  const uuid = kit.captureException(error, undefined, scope);
  if (uuid === undefined) return;
  // posthog-node builds the event asynchronously, so before_send runs after this line.
  const state = stateOf(kit);
  const entry = state.pending.get(uuid);
  if (entry) entry.mechanism = mechanism;
  else remember(state, uuid, { error, scope, mechanism });
}

interface EventFrame {
  filename?: string;
  in_app?: boolean;
}
interface EventException {
  mechanism?: Record<string, unknown>;
  stacktrace?: { frames?: EventFrame[] };
}

/**
 * The kit's before_send, first in line before the user's own (`clientOptions.before_send`):
 * on `$exception` events it decides `in_app` on every frame, sets the mechanism of
 * autocaptured errors and attaches code variables. A failure here never drops the event.
 * @internal
 */
export function exceptionBeforeSend(
  kit: PostHogKit,
  user: BeforeSendFn | BeforeSendFn[] | undefined,
): BeforeSendFn[] {
  const ours: BeforeSendFn = (event) => {
    if (event?.event === '$exception') {
      try {
        rewriteException(kit, event);
      } catch (error) {
        kit.errors.debug(`exception frames left as posthog-node built them: ${String(error)}`);
      }
    }
    return event;
  };
  return user === undefined ? [ours] : [ours, ...(Array.isArray(user) ? user : [user])];
}

function rewriteException(kit: PostHogKit, event: EventMessage): void {
  const state = stateOf(kit);
  const list = event.properties?.$exception_list as EventException[] | undefined;
  if (!Array.isArray(list)) return;
  const modules = kit.settings.inAppModules;
  for (const exception of list) {
    for (const frame of exception?.stacktrace?.frames ?? []) {
      frame.in_app = isInAppFile(frame.filename, modules, state.cwd);
    }
  }
  const uuid = event.uuid;
  const entry = uuid === undefined ? undefined : state.pending.get(uuid);
  if (!entry || uuid === undefined) return;
  state.pending.delete(uuid);
  const first = list[0];
  if (entry.mechanism && first) first.mechanism = { ...first.mechanism, ...entry.mechanism };
  const scope = entry.scope;
  if (!state.codeVariables || scope?.captureExceptionCodeVariables === false) return;
  const s = kit.settings;
  state.codeVariables.addCodeVariables(list, entry.error, {
    maskPatterns: [
      ...(s.useDefaultMaskPatterns ? DEFAULT_CODE_VARIABLES_MASK_PATTERNS : []),
      ...(scope?.codeVariablesMaskPatterns ?? s.codeVariablesMaskPatterns),
    ],
    ignorePatterns: scope?.codeVariablesIgnorePatterns ?? s.codeVariablesIgnorePatterns,
    cwd: state.cwd,
  });
}
