import type { Scope } from './context.ts';
import type { ExceptionMechanism } from './types.ts';

/** How long a crashing process waits for its exceptions to be sent (posthog-node's figure). */
export const FATAL_FLUSH_TIMEOUT_MS = 2_000;

type Listener = ((error: unknown, origin?: string) => void) & { _posthogErrorHandler?: boolean };

interface ProcessLike {
  on(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
  listeners(event: string): Listener[];
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
      // Without us Node would end the process now; it stays up only to send the event.
      const keepAlive = setTimeout(() => {}, FATAL_FLUSH_TIMEOUT_MS + 1_000);
      const kits = created.registrations.map((r) => r.kit);
      void Promise.all(kits.map((kit) => kit.shutdown(FATAL_FLUSH_TIMEOUT_MS).catch(() => {})))
        .catch(() => {})
        .then(() => {
          clearTimeout(keepAlive);
          uninstall(proc, created);
          reraise(error, origin);
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

/**
 * Hands the error back to Node, which then ends the process as it would have without
 * the kit: same message, stack, properties and exit code, `exit` listeners run. A
 * rejection is rejected again (Node's `--unhandled-rejections` mode applies again); an
 * exception is thrown from a built-in (a generator's `throw`) in a microtask, so the
 * source line Node prints above the message is one of Node's own rather than this file.
 * That line is the one difference: Node can no longer find where the error was thrown
 * once its `stack` has been read, which building the event does.
 */
function reraise(error: unknown, origin: string | undefined): void {
  if (origin === 'unhandledRejection') {
    void Promise.reject(error);
    return;
  }
  const generator = (function* () {})();
  queueMicrotask(generator.throw.bind(generator, error) as () => void);
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
