import { getKit } from './default.ts';
import type { PostHogKit } from './kit.ts';

/** Options of `installShutdownHooks`. */
export interface ShutdownHooksOptions {
  /**
   * The kit to shut down.
   * @default the default kit
   */
  kit?: PostHogKit | undefined;
  /**
   * The signals that flush before the process ends.
   * @default ['SIGTERM', 'SIGINT']
   */
  signals?: readonly string[] | undefined;
  /**
   * How long the flush may take; what is not sent by then is dropped.
   * @default 5000
   */
  timeoutMs?: number | undefined;
}

interface ProcessLike {
  pid: number;
  prependListener(event: string, listener: (signal: string) => void): unknown;
  off(event: string, listener: (signal: string) => void): unknown;
  listenerCount(event: string): number;
  kill(pid: number, signal: string): unknown;
}

/**
 * Flushes queued events when the process is told to stop. On SIGTERM/SIGINT the
 * kit is shut down (within `timeoutMs`); then, if no other listener handles the
 * signal, it is raised again so the process ends exactly as it would have (exit
 * code 128 + signal). With other listeners (your server's graceful close), they
 * decide when to exit. Returns a function that removes the hooks.
 */
export function installShutdownHooks(options: ShutdownHooksOptions = {}): () => void {
  const proc = (globalThis as { process?: ProcessLike }).process;
  if (!proc || typeof proc.prependListener !== 'function') return () => {};
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const timeoutMs = options.timeoutMs ?? 5_000;
  let stopping: Promise<void> | undefined;

  const onSignal = (signal: string) => {
    // Ours runs first (prepended), so every other listener, `once` ones included, is still counted.
    const appHandlesIt = proc.listenerCount(signal) > 1;
    stopping ??= (options.kit ?? getKit()).shutdown(timeoutMs).catch(() => {});
    void stopping.then(() => {
      remove();
      // Only ours was listening: let the signal do what it does without us.
      if (!appHandlesIt) proc.kill(proc.pid, signal);
    });
  };
  const remove = () => {
    for (const signal of signals) proc.off(signal, onSignal);
  };
  for (const signal of signals) proc.prependListener(signal, onSignal);
  return remove;
}

/** Anything with a `close` event: `http.Server`, Koa's/Express's `app.listen()` result, ... */
export interface Closable {
  once(event: 'close', listener: () => void): unknown;
}

/**
 * Flushes and stops the kit when a server closes (a framework's own close hook):
 * `shutdownOnClose(app.listen(3000))`.
 */
export function shutdownOnClose<T extends Closable>(
  server: T,
  options: Pick<ShutdownHooksOptions, 'kit' | 'timeoutMs'> = {},
): T {
  server.once('close', () => {
    void (options.kit ?? getKit()).shutdown(options.timeoutMs ?? 5_000).catch(() => {});
  });
  return server;
}
