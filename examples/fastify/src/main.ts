// `node src/main.ts`: against PostHog when POSTHOG_PROJECT_API_KEY is set, else the local emulator.
import { flag, startEmulatorUnlessConfigured } from '@posthog-kit/testing';
import { createApp } from './app.ts';

await startEmulatorUnlessConfigured({
  flags: [flag('new-dashboard', { rollout: 50 })],
  quiet: false,
});

const app = await createApp();
const url = await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' });
console.log(`Fastify app on ${url}: POST /signup, GET /dashboard, GET /reports/1`);

// SIGTERM/SIGINT: the default kit sends what is queued, then the signal ends the process as
// usual. Closing the app yourself (`await app.close()`, in your own graceful stop) flushes too.
