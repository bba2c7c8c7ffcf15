import type { PostHogEmulator } from '@posthog-kit/testing';
import {
  createPostHogKit,
  type KitLogger,
  type PostHogKit,
  type PostHogKitOptions,
} from '../src/index.ts';

/** A logger that keeps its lines, to assert on what the error mode printed. */
export function memoryLogger(): KitLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
    debug: (m) => lines.push(`debug ${m}`),
  };
}

/** A kit talking to the emulator over loopback, with no environment leaking in. */
export function kitFor(emulator: PostHogEmulator, options: PostHogKitOptions = {}): PostHogKit {
  return createPostHogKit({
    env: {},
    apiKey: emulator.projectApiKey,
    host: emulator.url,
    ...options,
    clientOptions: { fetchRetryCount: 0, requestTimeout: 2_000, ...options.clientOptions },
  });
}
