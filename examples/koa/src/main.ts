// `node src/main.ts`: against PostHog when POSTHOG_PROJECT_API_KEY is set, else the local emulator.
import { configure, installShutdownHooks, shutdownOnClose } from '@posthog-kit/core';
import { flag, startEmulatorUnlessConfigured } from '@posthog-kit/testing';
import { createApp } from './app.ts';

await startEmulatorUnlessConfigured({
  flags: [flag('new-dashboard', { rollout: 50 })],
  quiet: false,
});

configure();
const port = Number(process.env.PORT ?? 3000);
const server = createApp().listen(port, () => {
  console.log(
    `Koa app on http://localhost:${port}: POST /signup, GET /new-dashboard, GET /reports/1`,
  );
});

// SIGTERM/SIGINT: queued events are sent, then the signal ends the process as usual;
// closing the server (say, in your own graceful stop) flushes too.
installShutdownHooks();
shutdownOnClose(server);
