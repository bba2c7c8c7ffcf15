// `pnpm start` preloads this: without POSTHOG_PROJECT_API_KEY, a local PostHog emulator
// (and the environment pointing at it), so the app runs with nothing to configure.
import { flag, startEmulatorUnlessConfigured } from '@posthog-kit/testing';

await startEmulatorUnlessConfigured({
  flags: [flag('new-dashboard', { rollout: 50 })],
  quiet: false,
});
