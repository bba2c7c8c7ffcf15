// Runs the worker against whatever POSTHOG_* says, and stops cleanly on SIGTERM/SIGINT.
import { shutdown } from '@posthog-kit/core';
import { runWorker } from './worker.ts';

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    void shutdown(5_000).finally(() => process.exit(0));
  });
}

await runWorker([
  { id: 1, userId: 'user-1', email: 'ada@example.com' },
  { id: 2, userId: 'user-2', email: 'grace@example.com' },
  { id: 3, userId: 'user-3', email: 'not-an-address' },
]);
