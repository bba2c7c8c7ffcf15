// ESM on Node 20: capture, a local flag, a remote flag, shutdown, against the emulator.
import { createPostHogKit } from '@posthog-kit/core';
import { flag, startEmulator } from '@posthog-kit/testing';

const emulator = await startEmulator({ flags: [flag('smoke', { rollout: 100 })] });
const local = createPostHogKit({
  env: {},
  apiKey: emulator.projectApiKey,
  personalApiKey: emulator.personalApiKey,
  host: emulator.url,
});
const remote = createPostHogKit({ env: {}, apiKey: emulator.projectApiKey, host: emulator.url });
const results = await local.context.withContext({ distinctId: 'node20-esm' }, async () => {
  local.capture('smoke_esm', { properties: { node: process.version } });
  return {
    local: await local.featureEnabled('smoke'),
    remote: await remote.featureEnabled('smoke'),
  };
});
await Promise.all([local.shutdown(3000), remote.shutdown(3000)]);
const event = emulator.events.find((e) => e.event === 'smoke_esm');
await emulator.close();
console.log(
  JSON.stringify({
    node: process.version,
    ...results,
    distinctId: event?.distinctId,
    flagsAsked: emulator.flagsRequestCount,
  }),
);
