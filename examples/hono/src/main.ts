// `node src/main.ts`: against PostHog when POSTHOG_PROJECT_API_KEY is set, else the local emulator.
import { serve } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { configure, installShutdownHooks } from '@posthog-kit/core';
import { flag, startEmulatorUnlessConfigured } from '@posthog-kit/testing';
import { createApp } from './app.ts';

await startEmulatorUnlessConfigured({
  flags: [flag('new-dashboard', { rollout: 50 })],
  quiet: false,
});

configure();
installShutdownHooks(); // SIGTERM/SIGINT: queued events are sent before the process ends
const app = createApp(undefined, getConnInfo);
serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 3000) }, ({ port }) => {
  console.log(
    `Hono app on http://localhost:${port}: POST /signup, GET /new-dashboard, GET /reports/1`,
  );
});
