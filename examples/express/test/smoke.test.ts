import type { AddressInfo } from 'node:net';
import { createPostHogKit } from '@posthog-kit/core';
import { flag, startEmulator } from '@posthog-kit/testing';
import { expect, it } from 'vitest';
import { createApp } from '../src/app.ts';

it('the example app reports signup, the flag and the error to PostHog', async () => {
  const emulator = await startEmulator({ flags: [flag('new-dashboard', { rollout: 100 })] });
  const kit = createPostHogKit({
    env: {},
    apiKey: emulator.projectApiKey,
    personalApiKey: emulator.personalApiKey,
    host: emulator.url,
  });
  const server = createApp(kit).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const headers = { 'x-user-id': 'u-1', 'content-type': 'application/json' };
    expect(
      (await fetch(`${url}/signup`, { method: 'POST', headers, body: '{"plan":"pro"}' })).status,
    ).toBe(201);
    expect(await (await fetch(`${url}/dashboard`, { headers })).json()).toEqual({
      dashboard: 'v2',
    });
    expect((await fetch(`${url}/reports/1`, { headers })).status).toBe(500);
    await kit.flush();
    const seen = emulator.events.map((e) => [e.event, e.distinctId]);
    expect(seen).toEqual(
      expect.arrayContaining([
        ['signed_up', 'u-1'],
        ['$feature_flag_called', 'u-1'],
        ['$exception', 'u-1'],
        ['$pageview', 'u-1'],
      ]),
    );
    expect(emulator.events.find((e) => e.event === 'signed_up')?.properties).toMatchObject({
      plan: 'pro',
      email: 'u-1@example.com',
      $request_path: '/signup',
    });
  } finally {
    server.close();
    await kit.shutdown(1_000);
    await emulator.close();
  }
});
