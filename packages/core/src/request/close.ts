import type { PostHogKit } from '../kit.ts';

/**
 * What a middleware does when its app closes (Fastify's `onClose`, Nest's shutdown hooks):
 * send what the kit has queued, waiting at most `timeoutMs`. A flush, not a shutdown: the
 * default kit is shared with the module-level functions and any other app of the process
 * (a test that builds an app per case, a dev server that reloads), and it shuts itself
 * down on SIGTERM/SIGINT and at exit. A kit you created is yours to shut down.
 */
export async function flushWithin(kit: PostHogKit, timeoutMs: number): Promise<void> {
  const flushed = kit.flush();
  // Past the timeout nobody awaits it: a late failure (raise mode) must not go unhandled.
  flushed.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<true>((resolve) => {
    timer = setTimeout(() => resolve(true), timeoutMs);
    (timer as { unref?: () => void }).unref?.();
  });
  try {
    if ((await Promise.race([flushed, late])) === true) {
      kit.errors.warn(
        `the app closed before its events were sent (${timeoutMs} ms); they are still being sent`,
      );
    }
  } finally {
    clearTimeout(timer);
  }
}
