// Shutdown: the kits to flush when the process is told to stop or runs out of work.
// One set of process listeners, whatever the number of kits and copies of core.

/** What is shut down: a kit, or anything with a bounded `shutdown`. */
export interface Shutdownable {
  shutdown(timeoutMs?: number): Promise<void>;
  /** True once shut down: its registration is dropped. */
  readonly isShutdown?: boolean;
}

/** Options of `installShutdownHooks`. */
export interface ShutdownHooksOptions {
  /**
   * The kit to shut down.
   * @default the default kit (when there is one at that moment)
   */
  kit?: Shutdownable | undefined;
  /**
   * The signals that flush before the process ends.
   * @default ['SIGTERM', 'SIGINT']
   */
  signals?: readonly string[] | undefined;
  /**
   * How long the flush may take; what is not sent by then is dropped (and reported).
   * @default 5000
   */
  timeoutMs?: number | undefined;
  /**
   * Also shut down when the process runs out of work (`beforeExit`): a script that
   * forgot `shutdown()` still sends what it captured.
   * @default true
   */
  beforeExit?: boolean | undefined;
}

type Listener = ((signal: string) => void) & { posthogKit?: true };

interface ProcessLike {
  pid: number;
  on(event: string, listener: Listener): unknown;
  prependListener(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
  listeners(event: string): Listener[];
  kill(pid: number, signal: string): unknown;
}

interface Registration {
  kit: () => Shutdownable | undefined;
  signals: readonly string[];
  timeoutMs: number;
  beforeExit: boolean;
}

interface Hub {
  registrations: Set<Registration>;
  listening: Map<string, Listener>;
  stopping: Promise<void> | undefined;
}

const HUB_KEY = Symbol.for('posthog-kit.shutdown.v1');
const DEFAULT_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

function processLike(): ProcessLike | undefined {
  const proc = (globalThis as { process?: Partial<ProcessLike> }).process;
  return typeof proc?.prependListener === 'function' && typeof proc.listeners === 'function'
    ? (proc as ProcessLike)
    : undefined;
}

function hubOf(): Hub {
  const holder = globalThis as Record<symbol, Hub | undefined>;
  holder[HUB_KEY] ??= { registrations: new Set(), listening: new Map(), stopping: undefined };
  return holder[HUB_KEY];
}

/** Shuts down every registered kit that wants this event, each within its own timeout. */
function stopAll(hub: Hub, wants: (r: Registration) => boolean): Promise<void> {
  const kits = new Map<Shutdownable, number>();
  for (const r of hub.registrations) {
    const kit = wants(r) ? r.kit() : undefined;
    if (kit) kits.set(kit, Math.max(kits.get(kit) ?? 0, r.timeoutMs));
  }
  return Promise.all(
    [...kits].map(([kit, timeoutMs]) => kit.shutdown(timeoutMs).catch(() => {})),
  ).then(() => {});
}

function listen(proc: ProcessLike, hub: Hub, event: string): void {
  if (hub.listening.has(event)) return;
  const listener: Listener =
    event === 'beforeExit'
      ? () => {
          // The flush's requests keep the process up; once sent, it empties and ends.
          void stopAll(hub, (r) => r.beforeExit);
        }
      : (signal) => {
          // Ours is first (prepended): every other listener, `once` ones included, is counted.
          const appHandlesIt = proc.listeners(signal).some((l) => l.posthogKit !== true);
          hub.stopping ??= stopAll(hub, (r) => r.signals.includes(signal));
          void hub.stopping.then(() => {
            // Never the reason the process stays up: our listeners go, the app's decide.
            for (const [name, l] of hub.listening) if (name !== 'beforeExit') proc.off(name, l);
            for (const name of [...hub.listening.keys()]) {
              if (name !== 'beforeExit') hub.listening.delete(name);
            }
            // Only ours was listening: the signal does what it does without us.
            if (!appHandlesIt) proc.kill(proc.pid, signal);
          });
        };
  listener.posthogKit = true;
  hub.listening.set(event, listener);
  if (event === 'beforeExit') proc.on(event, listener);
  else proc.prependListener(event, listener);
}

function unlisten(proc: ProcessLike, hub: Hub): void {
  const wanted = new Set<string>();
  for (const r of hub.registrations) {
    for (const s of r.signals) wanted.add(s);
    if (r.beforeExit) wanted.add('beforeExit');
  }
  for (const [event, listener] of hub.listening) {
    if (wanted.has(event)) continue;
    proc.off(event, listener);
    hub.listening.delete(event);
  }
}

/**
 * Registers a kit (or, without `kit`, whatever `fallback` gives then) to shut down (flush, stop its pollers) when the process gets SIGTERM or
 * SIGINT and, unless `beforeExit: false`, when it runs out of work. On a signal, when no
 * other listener handles it, the signal is raised again once the kits are shut down, so
 * the process ends exactly as it would have (exit code 128 + signal); with other
 * listeners (your server's graceful close) those decide when to exit. Returns the
 * function that removes the registration.
 */
export function registerShutdown(
  options: ShutdownHooksOptions,
  fallback: () => Shutdownable | undefined,
): () => void {
  const proc = processLike();
  if (!proc) return () => {};
  const hub = hubOf();
  const given = options.kit;
  const registration: Registration = {
    kit: given ? () => given : fallback,
    signals: options.signals ?? DEFAULT_SIGNALS,
    timeoutMs: options.timeoutMs ?? 5_000,
    beforeExit: options.beforeExit ?? true,
  };
  // Kits shut down since (replaced default kits, tests) leave no registration behind.
  for (const r of hub.registrations) if (r.kit()?.isShutdown === true) hub.registrations.delete(r);
  hub.registrations.add(registration);
  for (const signal of registration.signals) listen(proc, hub, signal);
  if (registration.beforeExit) listen(proc, hub, 'beforeExit');
  return () => {
    hub.registrations.delete(registration);
    unlisten(proc, hub);
  };
}

/** Anything with a `close` event: `http.Server`, Koa's/Express's `app.listen()` result, ... */
export interface Closable {
  once(event: 'close', listener: () => void): unknown;
}

/** Shuts the kit (or what `fallback` gives then) down when a server closes. */
export function closeWith<T extends Closable>(
  server: T,
  options: Pick<ShutdownHooksOptions, 'kit' | 'timeoutMs'>,
  fallback: () => Shutdownable | undefined,
): T {
  server.once('close', () => {
    const kit = options.kit ?? fallback();
    void kit?.shutdown(options.timeoutMs ?? 5_000).catch(() => {});
  });
  return server;
}
