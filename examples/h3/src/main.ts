// `node src/main.ts`: against PostHog when POSTHOG_PROJECT_API_KEY is set, else the local emulator.
import { configure, installShutdownHooks } from '@posthog-kit/core';
import { flag, startEmulator } from '@posthog-kit/testing';
import { serve } from 'h3';
import { createApp } from './app.ts';

if (!process.env.POSTHOG_PROJECT_API_KEY && !process.env.POSTHOG_API_KEY) {
  const emulator = await startEmulator({
    flags: [flag('new-dashboard', { rollout: 50 })],
    quiet: false,
  });
  process.env.POSTHOG_HOST = emulator.url;
  process.env.POSTHOG_PROJECT_API_KEY = emulator.projectApiKey;
  process.env.POSTHOG_PERSONAL_API_KEY = emulator.personalApiKey;
  console.log(`PostHog emulator at ${emulator.url} (no POSTHOG_PROJECT_API_KEY set)`);
}

configure();
installShutdownHooks(); // SIGTERM/SIGINT: queued events are sent before the process ends
const server = serve(createApp(), { port: Number(process.env.PORT ?? 3000), silent: true });
await server.ready();
const { port } = new URL(server.url as string);
console.log(`h3 app on http://localhost:${port}: POST /signup, GET /new-dashboard, GET /reports/1`);
