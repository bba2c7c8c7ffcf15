import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createPostHogKit } from '@posthog-kit/fastify';
import { flag, startEmulator } from '@posthog-kit/testing';
import { expect, it } from 'vitest';
import { createApp } from '../src/app.ts';

it('the example app reports signup, the flag, views and the error to PostHog', async () => {
  const emulator = await startEmulator({ flags: [flag('new-dashboard', { rollout: 100 })] });
  const kit = createPostHogKit({
    env: {},
    apiKey: emulator.projectApiKey,
    personalApiKey: emulator.personalApiKey,
    host: emulator.url,
  });
  const app = await createApp(kit);
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const headers = { 'x-user-id': 'u-1', 'content-type': 'application/json' };
    const signup = await fetch(`${url}/signup`, {
      method: 'POST',
      headers,
      body: '{"plan":"pro"}',
    });
    expect(signup.status).toBe(201);
    const invalid = await fetch(`${url}/signup`, { method: 'POST', headers, body: '{"plan":"x"}' });
    expect(invalid.status).toBe(400);
    expect(await (await fetch(`${url}/dashboard`, { headers })).json()).toEqual({
      dashboard: 'v2',
    });
    expect((await fetch(`${url}/reports/1`, { headers })).status).toBe(500);
  } finally {
    // Closing the app sends what its requests captured: no kit.flush() needed.
    await app.close();
  }
  try {
    const seen = emulator.events.map((e) => [e.event, e.distinctId]);
    expect(seen).toEqual(
      expect.arrayContaining([
        ['signed_up', 'u-1'],
        ['$feature_flag_called', 'u-1'],
        ['$exception', 'u-1'],
        ['$pageview', 'u-1'],
      ]),
    );
    // The 400 is a view, not an exception.
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
    ).toEqual([
      ['/signup', 201],
      ['/signup', 400],
      ['/dashboard', 200],
      ['/reports/:id', 500],
    ]);
  } finally {
    await kit.shutdown(1_000);
    await emulator.close();
  }
});

it('`node src/main.ts` starts the emulator without a key, serves, and sends its events on SIGTERM', async () => {
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
    while (!/Fastify app on (http:\S+):/.test(out) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(out).toMatch(
      /PostHog emulator at http:\/\/127\.0\.0\.1:\d+ \(no POSTHOG_PROJECT_API_KEY/,
    );
    const appUrl = /Fastify app on (http:\S+):/.exec(out)?.[1];
    expect(appUrl).toBeDefined();
    const res = await fetch(`${appUrl}/signup`, {
      method: 'POST',
      headers: { 'x-user-id': 'u-9', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(201);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
  // The shutdown hook sent the signup (and its view) before the process ended.
  expect(out).toMatch(/POST \/batch\/ -> 200 \(2 events\)/);
}, 30_000);
