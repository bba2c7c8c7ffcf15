import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import { createPostHogKit, PostHogKit } from '@posthog-kit/nestjs';
import { startEmulator } from '@posthog-kit/testing';
import { expect, it } from 'vitest';
import { AppModule } from '../src/app.module.ts';

it('a signup is captured with the signed-in user', async () => {
  const emulator = await startEmulator();
  const kit = createPostHogKit({ apiKey: emulator.projectApiKey, host: emulator.url });
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
    .overrideProvider(PostHogKit) // the app's requests report to this kit
    .useValue(kit)
    .compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');

  await fetch(`${await app.getUrl()}/signup`, {
    method: 'POST',
    headers: { 'x-user-id': 'u-7', 'content-type': 'application/json' },
    body: JSON.stringify({ plan: 'pro' }),
  });
  await app.close(); // sends what the kit queued

  const [event] = await emulator.waitForEvents({ event: 'signed_up' });
  expect(event?.distinctId).toBe('u-7');
  expect(event?.properties).toMatchObject({ plan: 'pro', email: 'u-7@example.com' });
  await kit.shutdown();
  await emulator.close();
});
