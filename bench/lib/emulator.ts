// The emulator in its own process, counting events without keeping them.
// Prints `ready {url, projectKey, personalKey}`; answers `count` (totals and events by name)
// over IPC.
import { flag, startEmulator } from '@posthog-kit/testing';

const byName: Record<string, number> = {};
const emulator = await startEmulator({
  keepEvents: false,
  onEvent: (event) => {
    byName[event.event] = (byName[event.event] ?? 0) + 1;
  },
  flags: [flag('bench-flag', { rollout: 50 })],
});
process.on('message', (message) => {
  if (message === 'count')
    process.send?.({
      events: emulator.eventCount,
      definitions: emulator.definitionsFetchCount,
      byName,
    });
  if (message === 'reset') {
    emulator.reset();
    for (const name of Object.keys(byName)) delete byName[name];
  }
});
console.log(
  `ready ${JSON.stringify({ url: emulator.url, projectKey: emulator.projectApiKey, personalKey: emulator.personalApiKey })}`,
);
process.once('SIGTERM', () => void emulator.close().then(() => process.exit(0)));
