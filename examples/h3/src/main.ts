// `node src/main.ts`: against PostHog when POSTHOG_PROJECT_API_KEY is set, else the local emulator.
import { configure, installShutdownHooks } from '@posthog-kit/core';
import { flag, startEmulatorUnlessConfigured } from '@posthog-kit/testing';
import { serve } from 'h3';
import { createApp } from './app.ts';

await startEmulatorUnlessConfigured({
  flags: [flag('new-dashboard', { rollout: 50 })],
  quiet: false,
});

configure();
installShutdownHooks(); // SIGTERM/SIGINT: queued events are sent before the process ends
const server = serve(createApp(), { port: Number(process.env.PORT ?? 3000), silent: true });
await server.ready();
const { port } = new URL(server.url as string);
console.log(`h3 app on http://localhost:${port}: POST /signup, GET /new-dashboard, GET /reports/1`);
