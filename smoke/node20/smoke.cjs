// CJS on Node 20: the require() entry of both packages.
const { createPostHogKit } = require('@posthog-kit/core');
const { flag, startEmulator } = require('@posthog-kit/testing');

(async () => {
  const emulator = await startEmulator({ flags: [flag('smoke', { rollout: 100 })] });
  const kit = createPostHogKit({
    env: {},
    apiKey: emulator.projectApiKey,
    personalApiKey: emulator.personalApiKey,
    host: emulator.url,
  });
  const enabled = await kit.featureEnabled('smoke', { distinctId: 'node20-cjs' });
  kit.capture('smoke_cjs', { distinctId: 'node20-cjs' });
  await kit.shutdown(3000);
  const event = emulator.events.find((e) => e.event === 'smoke_cjs');
  await emulator.close();
  console.log(
    JSON.stringify({
      node: process.version,
      local: enabled,
      distinctId: event?.distinctId,
    }),
  );
})();
