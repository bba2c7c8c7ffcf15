import type { AddressInfo } from 'node:net';
import { createPostHogKit } from '@posthog-kit/core';
import { flag, startEmulator } from '@posthog-kit/testing';
import { expect, it } from 'vitest';
import { createApp } from '../src/app.ts';

it('the example app reports signup, the flag, views and the error to PostHog', async () => {
  const emulator = await startEmulator({
    flags: [
      flag('new-dashboard', {
        conditions: [{ properties: [{ key: 'distinct_id', value: 'u-1' }] }],
      }),
    ],
  });
  const kit = createPostHogKit({
    env: {},
    apiKey: emulator.projectApiKey,
    personalApiKey: emulator.personalApiKey,
    host: emulator.url,
  });
  const app = createApp(kit);
  app.silent = true;
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const headers = { 'x-user-id': 'u-1', 'content-type': 'application/json' };
    const signup = await fetch(`${url}/signup`, {
      method: 'POST',
      headers,
      body: '{"plan":"pro"}',
    });
    expect(signup.status).toBe(201);
    expect(await (await fetch(`${url}/new-dashboard`, { headers })).json()).toEqual({
      dashboard: 'v2',
    });
    // Another user does not have the flag: the route is not there for them.
    const other = { 'x-user-id': 'u-2' };
    expect((await fetch(`${url}/new-dashboard`, { headers: other })).status).toBe(404);
    expect((await fetch(`${url}/reports/1`, { headers })).status).toBe(500);
    await kit.flush();
    const seen = emulator.events.map((e) => [e.event, e.distinctId]);
    expect(seen).toEqual(
      expect.arrayContaining([
        ['signed_up', 'u-1'],
        ['$feature_flag_called', 'u-1'],
        ['new_dashboard_viewed', 'u-1'],
        ['$exception', 'u-1'],
        ['$pageview', 'u-1'],
      ]),
    );
    expect(emulator.events.filter((e) => e.event === '$exception')).toHaveLength(1);
    expect(emulator.events.find((e) => e.event === 'signed_up')?.properties).toMatchObject({
      plan: 'pro',
      email: 'u-1@example.com',
      $request_path: '/signup',
    });
    const views = emulator.events.filter((e) => e.event === '$pageview');
    expect(
      views.map((v) => [v.properties.$request_route, v.properties.$response_status_code]),
    ).toEqual(
      expect.arrayContaining([
        ['/signup', 201],
        ['/new-dashboard', 200],
        ['/new-dashboard', 404],
        ['/reports/:id', 500],
      ]),
    );
  } finally {
    server.close();
    await kit.shutdown(1_000);
    await emulator.close();
  }
});
