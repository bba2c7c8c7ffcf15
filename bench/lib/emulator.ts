// The emulator in its own process, counting events without keeping them.
// Prints `ready {url, projectKey, personalKey}`; answers `count` over IPC.
import { flag, startEmulator } from '@posthog-kit/testing';

const emulator = await startEmulator({
  keepEvents: false,
  flags: [flag('bench-flag', { rollout: 50 })],
});
process.on('message', (message) => {
  if (message === 'count')
    process.send?.({ events: emulator.eventCount, definitions: emulator.definitionsFetchCount });
  if (message === 'reset') emulator.reset();
});
console.log(
  `ready ${JSON.stringify({ url: emulator.url, projectKey: emulator.projectApiKey, personalKey: emulator.personalApiKey })}`,
);
process.once('SIGTERM', () => void emulator.close().then(() => process.exit(0)));
