// The emulator in its own process with `FLAG_COUNT` definitions (`flag-0`...), each on for
// half the users; events are counted, not kept. Prints `ready {url, projectKey, personalKey}`.
import { flag, startEmulator } from '@posthog-kit/testing';

const count = Number(process.env.FLAG_COUNT ?? '1');
const emulator = await startEmulator({
  keepEvents: false,
  flags: Array.from({ length: count }, (_, i) => flag(`flag-${i}`, { rollout: 50 })),
});
console.log(
  `ready ${JSON.stringify({ url: emulator.url, projectKey: emulator.projectApiKey, personalKey: emulator.personalApiKey })}`,
);
process.once('SIGTERM', () => void emulator.close().then(() => process.exit(0)));
