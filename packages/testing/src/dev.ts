import { startEmulator } from './emulator.ts';
import type { EmulatorOptions, PostHogEmulator } from './types.ts';

/**
 * For demos and local development: without a project key in the environment, starts
 * the emulator and points `POSTHOG_HOST`, `POSTHOG_PROJECT_API_KEY` and
 * `POSTHOG_PERSONAL_API_KEY` at it; with a key set, does nothing (real PostHog).
 * Returns the emulator, or undefined when PostHog itself is configured.
 */
export async function startEmulatorUnlessConfigured(
  options: EmulatorOptions = {},
  env: Record<string, string | undefined> = process.env,
): Promise<PostHogEmulator | undefined> {
  if (env.POSTHOG_PROJECT_API_KEY || env.POSTHOG_API_KEY) return undefined;
  const emulator = await startEmulator(options);
  env.POSTHOG_HOST = emulator.url;
  env.POSTHOG_PROJECT_API_KEY = emulator.projectApiKey;
  env.POSTHOG_PERSONAL_API_KEY = emulator.personalApiKey;
  (options.log ?? console.log)(
    `PostHog emulator at ${emulator.url} (no POSTHOG_PROJECT_API_KEY set)`,
  );
  return emulator;
}
