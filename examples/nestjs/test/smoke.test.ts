import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { flag, startEmulator } from '@posthog-kit/testing';
import { expect, it } from 'vitest';
import { AppModule } from '../src/app.module.ts';
import { ReportsService } from '../src/reports.service.ts';

it('the example app reports signup, the flag, the error and the job; closing it sends them', async () => {
  const emulator = await startEmulator({ flags: [flag('new-dashboard', { rollout: 100 })] });
  // The app reads POSTHOG_* (PostHogModule.forRoot()), as it would in production.
  Object.assign(process.env, {
    POSTHOG_PROJECT_API_KEY: emulator.projectApiKey,
    POSTHOG_PERSONAL_API_KEY: emulator.personalApiKey,
    POSTHOG_HOST: emulator.url,
  });
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const url = await app.getUrl();
  try {
    const headers = { 'x-user-id': 'u-1', 'content-type': 'application/json' };
    const signup = await fetch(`${url}/signup`, {
      method: 'POST',
      headers,
      body: '{"plan":"pro"}',
    });
    expect(signup.status).toBe(201);
    expect(await (await fetch(`${url}/dashboard`, { headers })).json()).toEqual({
      dashboard: 'v2',
    });
    expect((await fetch(`${url}/reports/1`, { headers })).status).toBe(500);
    app.get(ReportsService).sendDigest();
  } finally {
    // No flush: Nest's close runs the module's shutdown, which sends what is queued.
    await app.close();
  }
  try {
    const seen = emulator.events.map((e) => [e.event, e.distinctId]);
    expect(seen).toEqual(
      expect.arrayContaining([
        ['signed_up', 'u-1'],
        ['$feature_flag_called', 'u-1'],
        ['report_requested', 'u-1'],
        ['$exception', 'u-1'],
        ['$pageview', 'u-1'],
        ['digest_sent', 'digest-bot'],
      ]),
    );
    expect(emulator.events.find((e) => e.event === 'signed_up')?.properties).toMatchObject({
      plan: 'pro',
      email: 'u-1@example.com',
      $request_path: '/signup',
    });
    expect(emulator.events.find((e) => e.event === '$exception')?.properties).toMatchObject({
      $response_status_code: 500,
      $request_path: '/reports/1',
    });
    expect(emulator.events.find((e) => e.event === 'digest_sent')?.properties.job).toBe(
      'hourly-digest',
    );
  } finally {
    await emulator.close();
  }
});
