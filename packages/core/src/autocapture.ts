import type { Scope } from './context.ts';
import type { ExceptionMechanism } from './types.ts';

/** How long a crashing process waits for its exceptions to be sent (posthog-node's figure). */
export const FATAL_FLUSH_TIMEOUT_MS = 2_000;

type Listener = ((error: unknown, origin?: string) => void) & { _posthogErrorHandler?: boolean };

interface ProcessLike {
  on(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
  listeners(event: string): Listener[];
  execArgv?: string[];
  env?: Record<string, string | undefined>;
  getBuiltinModule?: (id: string) => unknown;
}

/** What autocapture needs of a kit: its context, and a bounded shutdown before the process ends. */
export interface AutocaptureKit {
  readonly context: { current(): Scope | undefined };
  shutdown(timeoutMs?: number): Promise<void>;
}

type Capture = (error: unknown, mechanism: ExceptionMechanism, scope: Scope | undefined) => void;

interface Registration {
  kit: AutocaptureKit;
  capture: Capture;
}

/** One set of process listeners, whatever the number of kits (and of copies of core). */
interface Hub {
  registrations: Registration[];
  installed: boolean;
  crashing: boolean;
  monitor: Listener;
  fatal: Listener;
}

const HUB_KEY = Symbol.for('posthog-kit.autocapture.v1');
const UNCAUGHT: ExceptionMechanism = { type: 'onuncaughtexception', handled: false };
const UNHANDLED_REJECTION: ExceptionMechanism = { type: 'onunhandledrejection', handled: false };

function processLike(): ProcessLike | undefined {
  const proc = (globalThis as { process?: Partial<ProcessLike> }).process;
  return typeof proc?.on === 'function' &&
    typeof proc.off === 'function' &&
    typeof proc.listeners === 'function'
    ? (proc as ProcessLike)
    : undefined;
}

/** The kit of the context the error was thrown in, else the kit registered last. */
function target(hub: Hub): { registration: Registration; scope: Scope | undefined } | undefined {
  let fallback: { registration: Registration; scope: Scope | undefined } | undefined;
  for (const registration of hub.registrations) {
    const scope = registration.kit.context.current();
    if (scope?.api === (registration.kit as unknown)) return { registration, scope };
    fallback = { registration, scope };
  }
  return fallback;
}

function hub(proc: ProcessLike): Hub {
  const holder = globalThis as Record<symbol, Hub | undefined>;
  const existing = holder[HUB_KEY];
  if (existing) return existing;
  const created: Hub = {
    registrations: [],
    installed: false,
    crashing: false,
    // A monitor sees every uncaught exception (and, in Node's default `throw` mode, every
    // unhandled rejection) before Node decides anything, and changes nothing.
    monitor: (error, origin) => {
      const found = target(created);
      if (!found) return;
      try {
        found.registration.capture(
          error,
          origin === 'unhandledRejection' ? UNHANDLED_REJECTION : UNCAUGHT,
          found.scope,
        );
      } catch {
        // Reporting must never change how the process handles its error.
      }
    },
    fatal: (error, origin) => {
      // Other listeners mean the app handles uncaught exceptions itself: nothing to do.
      const others = proc
        .listeners('uncaughtException')
        .filter(
          (l) =>
            l !== created.fatal &&
            l.name !== 'domainUncaughtExceptionClear' &&
            l._posthogErrorHandler !== true,
        );
      if (others.length > 0 || created.crashing) return;
      created.crashing = true;
      if (origin === 'unhandledRejection') holdRejectionListeners(proc);
      // Without us Node would end the process now; it stays up only to send the event.
      const keepAlive = setTimeout(() => {}, FATAL_FLUSH_TIMEOUT_MS + 1_000);
      const kits = created.registrations.map((r) => r.kit);
      void Promise.all(kits.map((kit) => kit.shutdown(FATAL_FLUSH_TIMEOUT_MS).catch(() => {})))
        .catch(() => {})
        .then(() => {
          clearTimeout(keepAlive);
          uninstall(proc, created);
          reraise(proc, error, origin);
        });
    },
  };
  holder[HUB_KEY] = created;
  return created;
}

function uninstall(proc: ProcessLike, h: Hub): void {
  if (!h.installed) return;
  h.installed = false;
  proc.off('uncaughtExceptionMonitor', h.monitor);
  proc.off('uncaughtException', h.fatal);
}

/** The `--unhandled-rejections` mode given on the command line or in NODE_OPTIONS. */
function rejectionsMode(proc: ProcessLike): string | undefined {
  const find = (args: readonly string[]) => {
    let mode: string | undefined;
    for (let i = 0; i < args.length; i++) {
      const arg = args[i] as string;
      if (arg.startsWith('--unhandled-rejections=')) mode = arg.slice(arg.indexOf('=') + 1);
      else if (arg === '--unhandled-rejections') mode = args[i + 1];
    }
    return mode;
  };
  return find(proc.execArgv ?? []) ?? find((proc.env?.NODE_OPTIONS ?? '').split(/\s+/));
}

/**
 * In `strict` mode Node raises a rejection as an uncaught exception first and, once a
 * listener (ours) has handled it, emits `unhandledRejection` too. Without the kit the
 * process would have ended before that: the app's `unhandledRejection` listeners must
 * not run, and Node must not print its "unhandled rejection" warning. They are set
 * aside for that one emit and put back right after it. (In the default `throw` mode Node
 * emitted `unhandledRejection` before, found no listener, and emits nothing after.)
 */
function holdRejectionListeners(proc: ProcessLike): void {
  const held = proc.listeners('unhandledRejection');
  if (rejectionsMode(proc) !== 'strict' && held.length === 0) return;
  for (const listener of held) proc.off('unhandledRejection', listener);
  let restored = false;
  const restore: Listener = () => {
    if (restored) return;
    restored = true;
    proc.off('unhandledRejection', restore);
    for (const listener of held) proc.on('unhandledRejection', listener);
  };
  proc.on('unhandledRejection', restore);
  // Node emits within the same turn; should it not, the listeners come back anyway.
  setTimeout(restore, 0);
}

// Node prints no source excerpt for an error thrown from a line that contains this text
// (its own marker, for code it runs on the user's behalf): the kit prints the excerpt.
const NO_EXCERPT = 'node-do-not-add-exception-line';

function makeThrower(): ((error: unknown) => never) | undefined {
  try {
    return new Function('error', `throw error; // ${NO_EXCERPT}`) as (error: unknown) => never;
  } catch {
    return undefined; // --disallow-code-generation-from-strings
  }
}

type FsLike = {
  readFileSync(path: string, encoding: 'utf8'): string;
  writeSync(fd: number, text: string): unknown;
};
type UrlLike = { fileURLToPath(url: string): string };

/**
 * The excerpt Node prints above a fatal error, as Node would print it: `file:line`, the
 * source line, a caret. Taken from the error's first stack frame (where it was created),
 * with the caret moved back to `throw` when the error was created in a `throw` statement
 * (Node points at the throw); undefined when that frame is not a file that can be read.
 */
export function sourceExcerpt(
  error: unknown,
  origin: string | undefined,
  fs: Pick<FsLike, 'readFileSync'>,
  url: UrlLike | undefined,
): string | undefined {
  let stack: unknown;
  try {
    stack = (error as { stack?: unknown }).stack;
  } catch {
    return undefined;
  }
  if (typeof stack !== 'string') return undefined;
  const first = /^ {4}at (.*)$/m.exec(stack)?.[1];
  const frame =
    first && /^(?:.*? \()?((?:file:\/\/|\/|[A-Za-z]:\\).+?):(\d+):(\d+)\)?$/.exec(first);
  if (!frame) return undefined;
  const [, file = '', lineText = '', columnText = ''] = frame;
  let text: string | undefined;
  try {
    const path = file.startsWith('file://') ? url?.fileURLToPath(file) : file;
    if (path === undefined) return undefined;
    text = fs.readFileSync(path, 'utf8').split('\n')[Number(lineText) - 1]?.replace(/\r$/, '');
  } catch {
    return undefined;
  }
  if (text === undefined) return undefined;
  let column = Number(columnText) - 1;
  if (column < 0 || column > text.length) return undefined;
  if (origin !== 'unhandledRejection') {
    const thrown = /\bthrow\s+$/.exec(text.slice(0, column));
    if (thrown) column = thrown.index;
  }
  let caret = '';
  for (let i = 0; i < column; i++) caret += text[i] === '\t' ? '\t' : ' ';
  return `${file}:${lineText}\n${text}\n${caret}^\n`;
}

/**
 * Hands the error back to Node, which then ends the process as it would have without
 * the kit: same message, stack, properties and exit code, `exit` listeners run. The
 * error is thrown again from a timer (a rejection too: Node ends the process the same
 * way for both), from a line that tells Node not to print its own source excerpt, since
 * Node would show that line rather than the app's: the kit prints the app's line above
 * it instead (see {@link sourceExcerpt} for where it can differ from Node's).
 */
function reraise(proc: ProcessLike, error: unknown, origin: string | undefined): void {
  const thrower = makeThrower();
  if (!thrower) {
    if (origin === 'unhandledRejection') {
      void Promise.reject(error);
      return;
    }
    const generator = (function* () {})();
    queueMicrotask(generator.throw.bind(generator, error) as () => void);
    return;
  }
  let excerpt: string | undefined;
  let fs: FsLike | undefined;
  try {
    fs = proc.getBuiltinModule?.('node:fs') as FsLike | undefined;
    const url = proc.getBuiltinModule?.('node:url') as UrlLike | undefined;
    const sourceMaps = (proc as { sourceMapsEnabled?: boolean }).sourceMapsEnabled === true;
    // With source maps Node would show the original source, which the kit cannot read.
    if (fs && !sourceMaps) excerpt = sourceExcerpt(error, origin, fs, url);
  } catch {
    excerpt = undefined;
  }
  setTimeout(() => {
    // Printed where Node prints its excerpt: after the `exit` listeners, before the error.
    const print: Listener = () => {
      if (excerpt === undefined) return;
      try {
        fs?.writeSync(2, `${excerpt}\n`);
      } catch {
        // stderr closed: Node's own lines will not make it either.
      }
    };
    proc.on('exit', print);
    // Still running next turn: a listener added since handled the error, nothing to print.
    setImmediate(() => proc.off('exit', print));
    thrower(error);
  }, 0);
}

/**
 * Captures the process's uncaught exceptions and unhandled rejections through the kit's
 * own `captureException` (with the context they were thrown in). When nothing else
 * listens for `uncaughtException`, the process would end: it then waits (at most
 * {@link FATAL_FLUSH_TIMEOUT_MS}) for the kits to send their events and hands the error
 * back to Node, which ends it as usual. Returns the function that stops it.
 */
export function startAutocapture(kit: AutocaptureKit, capture: Capture): () => void {
  const proc = processLike();
  if (!proc) return () => {};
  const h = hub(proc);
  const registration: Registration = { kit, capture };
  h.registrations.push(registration);
  if (!h.installed && !h.crashing) {
    h.installed = true;
    proc.on('uncaughtExceptionMonitor', h.monitor);
    proc.on('uncaughtException', h.fatal);
  }
  return () => {
    const i = h.registrations.indexOf(registration);
    if (i >= 0) h.registrations.splice(i, 1);
    if (h.registrations.length === 0 && !h.crashing) uninstall(proc, h);
  };
}
