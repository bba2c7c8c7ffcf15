// The debugger that takes code variables: one inspector session on the main thread, for
// the whole process, paused by V8 at each exception thrown outside node_modules.
//
// Main thread, not a worker (Sentry's newer design): the pause is handled synchronously
// on the thread that threw, in one protocol round trip, and the values are read as the
// objects they are rather than through the protocol. A worker pays cross-thread messages
// while the app stays paused anyway (measured: 0.37-0.43 ms a pause against 0.28 ms
// here, same work) and costs a thread. Neither needs a debugger port.
import type { Session } from 'node:inspector';
import type { types as UtilTypes } from 'node:util';
import { nodeBuiltin } from './node.ts';
import { type PauseBounds, type SnapFrame, type Snapshot, Snapshotter } from './snapshot.ts';

/** Process-wide tuning: there is one debugger per process, whatever the number of kits. */
export interface CodeVariablesOptions {
  /**
   * Exception pauses per second. Reaching it switches pausing off for a cool-down: the
   * exceptions of that time are still captured, without variables. A pause costs about
   * 0.5 ms for a shallow stack and 2 ms under a framework's (see the core README).
   * @default 20
   */
  maxExceptionsPerSecond?: number | undefined;
  /**
   * The first cool-down. It doubles when the limit is reached again right after one
   * (up to 5 minutes), and starts over after a calm period.
   * @default 5000
   */
  cooldownMs?: number | undefined;
  /**
   * In-app frames whose variables are taken, from the throwing frame outwards.
   * @default 10
   */
  maxFrames?: number | undefined;
  /**
   * Time one pause may spend taking variables. The walk checks it as it goes; what it
   * had no time for is sent as a marker saying so (`"...": "4 variables not read (pause
   * time limit of 10 ms)"`, `"[cut: pause time limit]"`).
   * @default 10
   */
  maxPauseMs?: number | undefined;
  /**
   * Time all pauses together may take per second (a budget refilled continuously, up to
   * one second's worth). A pause that overdraws it switches pausing off until it is a
   * quarter full again: those exceptions are still captured, without variables.
   * @default 50
   */
  maxPauseMsPerSecond?: number | undefined;
}

/** What the debugger did since the process started. */
export interface CodeVariablesStats {
  /** A debugger session is attached. */
  active: boolean;
  /** It currently pauses on exceptions (false during a cool-down). */
  pausing: boolean;
  /** Exception pauses (thrown outside node_modules and Node's own code). */
  pauses: number;
  /** Exceptions whose variables were taken. */
  snapshots: number;
  /** Times the rate limit switched pausing off. */
  rateLimited: number;
  /** Time spent in pauses, in milliseconds (from the pause handler's start to the resume). */
  pauseMs: number;
  /** The longest pause, in milliseconds. */
  slowestPauseMs: number;
  /** Snapshots that a bound cut short (time, keys read), marked where the cut is. */
  cut: number;
  /** Times the time budget (`maxPauseMsPerSecond`) switched pausing off. */
  budgetExhausted: number;
}

/** What the debugger needs from each kit that uses it. @internal */
export interface DebuggerHost {
  /** Whether the current context wants variables (asked at the throw). */
  wantsVariables(): boolean;
  /** Whether a script (URL or path) is the app's own. */
  isInApp(file: string): boolean;
  /** The kit's `inAppModules`, which decide what V8 may skip without pausing. */
  readonly inAppModules: readonly string[] | undefined;
}

const DEFAULTS: Required<{ [K in keyof CodeVariablesOptions]-?: number }> = {
  maxExceptionsPerSecond: 20,
  cooldownMs: 5_000,
  maxFrames: 10,
  maxPauseMs: 10,
  maxPauseMsPerSecond: 50,
};
const MAX_COOLDOWN_MS = 5 * 60_000;
// Frames looked at per pause: deep recursion costs no more than this.
const MAX_CALL_FRAMES = 100;
const MAX_SCRIPTS = 100_000;
// The scopes that hold a frame's own variables: its blocks and catch clauses, up to its
// function scope ('local'). Whatever follows belongs to enclosing code (closures, a
// module's top level, globals), even when V8 calls it 'block' too.
const INNER_SCOPES = new Set(['block', 'catch']);
// Inside a function too, but not its variables: a `with` object, an eval's scope.
const FOREIGN_SCOPES = new Set(['with', 'eval']);

const HOOK = Symbol.for('posthog-kit.code-variables.hook.v1');
const STATE = Symbol.for('posthog-kit.code-variables.v1');
// Runs in the paused frame's realm with the thrown value as `this` and the scope objects as
// arguments, and hands them to the hook: the values are then read directly, in-process.
const HOOK_CALL = `function () { var hook = globalThis[Symbol.for(${JSON.stringify(
  HOOK.description,
)})]; if (typeof hook === 'function') hook.call(this, arguments); }`;

interface PendingFrame {
  url: string;
  fn: string;
  line: number;
  column: number;
  scopes: number;
}

interface CallFrame {
  functionName: string;
  location: { scriptId: string; lineNumber: number; columnNumber?: number };
  scopeChain: Array<{ type: string; object: { objectId?: string } }>;
}

interface PausedParams {
  reason: string;
  data?: { objectId?: string };
  callFrames: CallFrame[];
}

interface State {
  session: Session | undefined;
  types: typeof UtilTypes | undefined;
  readonly hosts: Set<DebuggerHost>;
  readonly scripts: Map<string, string>;
  readonly snapshots: WeakMap<object, Snapshot>;
  options: typeof DEFAULTS;
  windowStart: number;
  windowCount: number;
  cooldownMs: number;
  cooldownTimer: ReturnType<typeof setTimeout> | undefined;
  liftedAt: number | undefined;
  pausing: boolean;
  pending: PendingFrame[] | undefined;
  /** The time budget: milliseconds left, refilled at `maxPauseMsPerSecond`. */
  budgetMs: number;
  budgetAt: number;
  budgetTimer: ReturnType<typeof setTimeout> | undefined;
  /** The running pause's bounds, read by the hook. */
  bounds: PauseBounds;
  readonly stats: Omit<CodeVariablesStats, 'active' | 'pausing'>;
}

// On globalThis: an ESM and a CJS copy of this entry must share one session and one store.
function globalState(): State {
  const holder = globalThis as Record<symbol, State | undefined>;
  holder[STATE] ??= {
    session: undefined,
    types: undefined,
    hosts: new Set(),
    scripts: new Map(),
    snapshots: new WeakMap(),
    options: { ...DEFAULTS },
    windowStart: 0,
    windowCount: 0,
    cooldownMs: DEFAULTS.cooldownMs,
    cooldownTimer: undefined,
    liftedAt: undefined,
    pausing: false,
    pending: undefined,
    budgetMs: DEFAULTS.maxPauseMsPerSecond,
    budgetAt: 0,
    budgetTimer: undefined,
    bounds: { deadline: 0, maxPauseMs: DEFAULTS.maxPauseMs, large: new WeakMap() },
    stats: {
      pauses: 0,
      snapshots: 0,
      rateLimited: 0,
      pauseMs: 0,
      slowestPauseMs: 0,
      cut: 0,
      budgetExhausted: 0,
    },
  };
  // A state from an older copy of this module lacks the newer fields.
  const state = holder[STATE];
  state.bounds ??= { deadline: 0, maxPauseMs: DEFAULTS.maxPauseMs, large: new WeakMap() };
  state.budgetMs ??= DEFAULTS.maxPauseMsPerSecond;
  state.budgetAt ??= 0;
  state.stats.pauseMs ??= 0;
  state.stats.slowestPauseMs ??= 0;
  state.stats.cut ??= 0;
  state.stats.budgetExhausted ??= 0;
  return state;
}

/** The variables taken when this error object was thrown, if any. @internal */
export function snapshotOf(error: object): Snapshot | undefined {
  return globalState().snapshots.get(error);
}

function post(state: State, method: string, params?: object): void {
  state.session?.post(method, params as never, () => {});
}

function setPausing(state: State, on: boolean): void {
  state.pausing = on;
  post(state, 'Debugger.setPauseOnExceptions', { state: on ? 'all' : 'none' });
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Scripts V8 may skip: Node's own, and what no kit counts as in-app. V8 then does not
 * pause for an exception thrown and caught inside them (it still does when app code is
 * the one that catches it). With prefixes the match is looser than the in-app rule (a
 * URL containing a prefix anywhere is not skipped); the pause handler has the last word.
 */
function blackboxPatterns(hosts: Iterable<DebuggerHost>): string[] {
  const conditions: string[] = [];
  for (const host of hosts) {
    const modules = host.inAppModules;
    if (!modules) {
      conditions.push('(?=.*[/\\\\]node_modules[/\\\\])');
      continue;
    }
    const forms = modules
      .filter((m) => m !== '')
      .flatMap((m) => [m, encodeURI(m), m.replace(/\//g, '\\')])
      .map(escapeRegex);
    if (forms.length > 0) conditions.push(`(?!.*(?:${forms.join('|')}))`);
  }
  return conditions.length > 0 ? ['^node:', `^${conditions.join('')}`] : ['^node:'];
}

/** Counts a pause; the one that reaches the limit switches pausing off for a cool-down. */
function countPause(state: State): void {
  const now = Date.now();
  if (now - state.windowStart >= 1_000) {
    state.windowStart = now;
    state.windowCount = 0;
  }
  state.windowCount++;
  if (state.windowCount < state.options.maxExceptionsPerSecond || !state.pausing) return;
  const backToBack = state.liftedAt !== undefined && now - state.liftedAt < state.cooldownMs;
  state.cooldownMs = backToBack
    ? Math.min(state.cooldownMs * 2, MAX_COOLDOWN_MS)
    : state.options.cooldownMs;
  state.stats.rateLimited++;
  setPausing(state, false);
  state.cooldownTimer = setTimeout(() => {
    state.cooldownTimer = undefined;
    state.liftedAt = Date.now();
    state.windowStart = state.liftedAt;
    state.windowCount = 0;
    if (state.session && !state.budgetTimer) setPausing(state, true);
  }, state.cooldownMs);
  (state.cooldownTimer as { unref?: () => void }).unref?.();
}

const now = () => performance.now();

/** The time budget left at `at`, refilled since it was last looked at. */
function refill(state: State, at: number): number {
  const perSecond = state.options.maxPauseMsPerSecond;
  const elapsed = Math.max(0, at - state.budgetAt);
  state.budgetMs = Math.min(perSecond, state.budgetMs + (elapsed * perSecond) / 1_000);
  state.budgetAt = at;
  return state.budgetMs;
}

/** Charges a pause to the budget; overdrawn, pausing stops until it is a quarter full. */
function charge(state: State, spent: number): void {
  const stats = state.stats;
  stats.pauseMs += spent;
  if (spent > stats.slowestPauseMs) stats.slowestPauseMs = spent;
  state.budgetMs -= spent;
  if (state.budgetMs > 0 || state.budgetTimer || !state.session) return;
  const perSecond = state.options.maxPauseMsPerSecond;
  const waitMs = Math.ceil(((perSecond / 4 - state.budgetMs) * 1_000) / perSecond);
  stats.budgetExhausted++;
  setPausing(state, false);
  state.budgetTimer = setTimeout(() => {
    state.budgetTimer = undefined;
    if (state.session && !state.cooldownTimer) setPausing(state, true);
  }, waitMs);
  (state.budgetTimer as { unref?: () => void }).unref?.();
}

function ownScopes(frame: CallFrame): Array<{ objectId: string }> {
  const own: Array<{ objectId: string }> = [];
  for (const scope of frame.scopeChain) {
    const objectId = scope.object.objectId;
    if (scope.type === 'local') {
      if (objectId) own.push({ objectId });
      return own;
    }
    if (FOREIGN_SCOPES.has(scope.type)) continue;
    if (!INNER_SCOPES.has(scope.type)) break;
    if (objectId) own.push({ objectId });
  }
  // No function scope: top-level code, whose "variables" are the module's.
  return [];
}

/** Runs while V8 holds the app at a throw: decide, take what is needed, resume. */
function onPaused(state: State, params: PausedParams): void {
  const started = now();
  let counted = false;
  try {
    if (params.reason !== 'exception' && params.reason !== 'promiseRejection') return;
    counted = true;
    state.stats.pauses++;
    countPause(state);
    const maxPauseMs = state.options.maxPauseMs;
    state.bounds.maxPauseMs = maxPauseMs;
    state.bounds.deadline = started + Math.min(maxPauseMs, Math.max(0, refill(state, started)));
    // A primitive thrown cannot carry variables to its capture.
    const exceptionId = params.data?.objectId;
    if (typeof exceptionId !== 'string') return;
    const hosts = [...state.hosts];
    if (!hosts.some((h) => h.wantsVariables())) return;
    const frames: PendingFrame[] = [];
    const scopes: Array<{ objectId: string }> = [];
    const callFrames = params.callFrames;
    const maxFrames = state.options.maxFrames;
    for (let i = 0; i < callFrames.length && i < MAX_CALL_FRAMES; i++) {
      const frame = callFrames[i] as CallFrame;
      const url = state.scripts.get(frame.location.scriptId);
      if (url === undefined || !hosts.some((h) => h.isInApp(url))) continue;
      const own = ownScopes(frame);
      if (own.length === 0) continue;
      frames.push({
        url,
        fn: frame.functionName,
        line: frame.location.lineNumber + 1,
        column: (frame.location.columnNumber ?? 0) + 1,
        scopes: own.length,
      });
      scopes.push(...own);
      if (frames.length >= maxFrames) break;
    }
    if (frames.length === 0) return;
    state.pending = frames;
    // Synchronous on a main-thread session: the hook has run when this returns.
    post(state, 'Runtime.callFunctionOn', {
      functionDeclaration: HOOK_CALL,
      objectId: exceptionId,
      arguments: scopes,
      silent: true,
    });
  } catch {
    // Whatever happens here, the app is resumed below.
  } finally {
    state.pending = undefined;
    post(state, 'Debugger.resume');
    if (counted) charge(state, now() - started);
  }
}

function makeHook(state: State) {
  return function takeVariables(this: unknown, scopes: ArrayLike<unknown>): void {
    const pending = state.pending;
    const types = state.types;
    if (!pending || !types || typeof this !== 'object' || this === null) return;
    // Thrown again (a rethrow): the first throw, closest to the cause, is kept.
    if (state.snapshots.has(this)) return;
    const snapshotter = new Snapshotter(types, state.bounds);
    const frames: SnapFrame[] = [];
    let offset = 0;
    for (const frame of pending) {
      const own: unknown[] = [];
      for (let i = 0; i < frame.scopes; i++) own.push(scopes[offset + i]);
      offset += frame.scopes;
      frames.push({
        url: frame.url,
        fn: frame.fn,
        line: frame.line,
        column: frame.column,
        vars: snapshotter.frameVariables(own),
      });
    }
    state.snapshots.set(this, { frames });
    state.stats.snapshots++;
    if (snapshotter.cut) state.stats.cut++;
  };
}

function connect(state: State, inspector: typeof import('node:inspector')): void {
  const session = new inspector.Session();
  session.connect();
  state.session = session;
  session.on('Debugger.scriptParsed', (message) => {
    const { scriptId, url } = message.params;
    if (!url) return;
    if (state.scripts.size >= MAX_SCRIPTS) {
      const oldest = state.scripts.keys().next().value;
      if (oldest !== undefined) state.scripts.delete(oldest);
    }
    state.scripts.set(scriptId, url);
  });
  session.on('Debugger.paused', (message) => onPaused(state, message.params as PausedParams));
  (globalThis as Record<symbol, unknown>)[HOOK] = makeHook(state);
  // Every script already loaded is reported (scriptParsed) before this returns.
  post(state, 'Debugger.enable');
  // `debugger;` statements in the app stay no-ops, as they are without a debugger.
  post(state, 'Debugger.setBreakpointsActive', { active: false });
  state.windowStart = 0;
  state.windowCount = 0;
  setPausing(state, state.cooldownTimer === undefined && state.budgetTimer === undefined);
}

function disconnect(state: State): void {
  const session = state.session;
  if (!session) return;
  try {
    post(state, 'Debugger.disable');
    session.disconnect();
  } catch {
    // Already gone.
  }
  state.session = undefined;
  state.pausing = false;
  state.scripts.clear();
  if (state.cooldownTimer) clearTimeout(state.cooldownTimer);
  state.cooldownTimer = undefined;
  if (state.budgetTimer) clearTimeout(state.budgetTimer);
  state.budgetTimer = undefined;
  delete (globalThis as Record<symbol, unknown>)[HOOK];
}

/**
 * Attaches the process's debugger for a kit (the first kit connects it). Returns the
 * function that detaches (the last one disconnects it), or why it cannot attach.
 * @internal
 */
export function attachDebugger(host: DebuggerHost): (() => void) | string {
  const inspector = nodeBuiltin<typeof import('node:inspector')>('node:inspector');
  const util = nodeBuiltin<typeof import('node:util')>('node:util');
  if (typeof inspector?.Session !== 'function' || !util?.types) {
    return 'this runtime has no node:inspector';
  }
  const state = globalState();
  if (!state.session) {
    // Another debugger (--inspect) owns pausing; taking it over would get in its way.
    if (inspector.url() !== undefined) {
      return 'a debugger is already attached to this process (--inspect)';
    }
    try {
      state.types = util.types;
      connect(state, inspector);
    } catch (error) {
      disconnect(state);
      return `the inspector could not be started (${error instanceof Error ? error.message : String(error)})`;
    }
  }
  state.hosts.add(host);
  post(state, 'Debugger.setBlackboxPatterns', { patterns: blackboxPatterns(state.hosts) });
  let attached = true;
  return () => {
    if (!attached) return;
    attached = false;
    state.hosts.delete(host);
    if (state.hosts.size === 0) disconnect(state);
    else post(state, 'Debugger.setBlackboxPatterns', { patterns: blackboxPatterns(state.hosts) });
  };
}

function positive(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 1) {
    throw new TypeError(`[posthog-kit] ${name}: expected a number >= 1, got ${String(value)}`);
  }
  return Math.floor(value);
}

/**
 * Tunes the process's code variables (rate limit, time bounds, frames). Starts a new
 * rate-limit window with a full time budget, and ends a cool-down in progress.
 */
export function configureCodeVariables(options: CodeVariablesOptions = {}): void {
  const state = globalState();
  state.options = {
    maxExceptionsPerSecond: positive(
      options.maxExceptionsPerSecond,
      'maxExceptionsPerSecond',
      DEFAULTS.maxExceptionsPerSecond,
    ),
    cooldownMs: positive(options.cooldownMs, 'cooldownMs', DEFAULTS.cooldownMs),
    maxFrames: positive(options.maxFrames, 'maxFrames', DEFAULTS.maxFrames),
    maxPauseMs: positive(options.maxPauseMs, 'maxPauseMs', DEFAULTS.maxPauseMs),
    maxPauseMsPerSecond: positive(
      options.maxPauseMsPerSecond,
      'maxPauseMsPerSecond',
      DEFAULTS.maxPauseMsPerSecond,
    ),
  };
  state.budgetMs = state.options.maxPauseMsPerSecond;
  state.budgetAt = now();
  if (state.budgetTimer) clearTimeout(state.budgetTimer);
  state.budgetTimer = undefined;
  state.windowStart = 0;
  state.windowCount = 0;
  state.cooldownMs = state.options.cooldownMs;
  state.liftedAt = undefined;
  if (state.cooldownTimer) clearTimeout(state.cooldownTimer);
  state.cooldownTimer = undefined;
  if (state.session && !state.pausing) setPausing(state, true);
}

/** What the debugger did so far, and whether it is attached and pausing. */
export function codeVariablesStats(): CodeVariablesStats {
  const state = globalState();
  return { active: state.session !== undefined, pausing: state.pausing, ...state.stats };
}
