import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
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
  const app = createApp(kit, getConnInfo);
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
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
    const crash = await fetch(`${url}/reports/1`, { headers });
    expect({ status: crash.status, body: await crash.json() }).toEqual({
      status: 500,
      body: { error: 'internal' },
    });
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
      $ip: '127.0.0.1',
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

it('`node src/main.ts` starts the emulator without a key, prints both URLs and serves', async () => {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('POSTHOG_')),
  );
  const child = spawn(process.execPath, ['src/main.ts'], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    env: { ...env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (chunk) => {
    out += chunk;
  });
  child.stderr.on('data', (chunk) => {
    out += chunk;
  });
  try {
    const deadline = Date.now() + 15_000;
    while (!/Hono app on (http:\S+):/.test(out) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(out).toMatch(
      /PostHog emulator at http:\/\/127\.0\.0\.1:\d+ \(no POSTHOG_PROJECT_API_KEY/,
    );
    const appUrl = /Hono app on (http:\S+):/.exec(out)?.[1];
    expect(appUrl).toBeDefined();
    const res = await fetch(`${appUrl}/signup`, {
      method: 'POST',
      headers: { 'x-user-id': 'u-9' },
    });
    expect(res.status).toBe(201);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
  // The shutdown hook sent the signup (and its view) before the process ended.
  expect(out).toMatch(/POST \/batch\/ -> 200 \(2 events\)/);
}, 30_000);
