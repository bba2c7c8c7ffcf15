import { flag, type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clientFor, readFlag, readPayload, shutdownClients } from './helpers.ts';

let emulator: PostHogEmulator;

beforeEach(async () => {
  emulator = await startEmulator({
    flags: [
      flag('plan-gate', {
        conditions: [{ properties: [{ key: 'plan', value: 'pro' }] }],
        payload: { seats: 5 },
      }),
      flag('company-flag', { groupTypeIndex: 0 }),
    ],
    groupTypeMapping: { '0': 'company' },
  });
});
afterEach(async () => {
  await shutdownClients();
  await emulator.close();
});

const definitions = (e: PostHogEmulator, headers: Record<string, string> = {}, token?: string) =>
  fetch(`${e.url}/flags/definitions?token=${token ?? e.projectApiKey}&send_cohorts`, {
    headers: { authorization: `Bearer ${e.personalApiKey}`, ...headers },
  });

const until = async (condition: () => boolean, timeoutMs = 3000) => {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('flag definitions (/flags/definitions)', () => {
  it('lets posthog-node evaluate locally, without /flags', async () => {
    const client = clientFor(emulator, {
      personalApiKey: emulator.personalApiKey,
      featureFlagsPollingInterval: null,
    });
    const options = { personProperties: { plan: 'pro' }, onlyEvaluateLocally: true };
    expect(await readFlag(client, 'plan-gate', 'u1', options)).toBe(true);
    expect(await readPayload(client, 'plan-gate', 'u1', options)).toEqual({
      seats: 5,
    });
    const flags = await client.getAllFlags('u1', {
      groups: { company: 'acme' },
      personProperties: { plan: 'free' },
      onlyEvaluateLocally: true,
    });
    expect(flags).toEqual({ 'plan-gate': false, 'company-flag': true });
    expect(emulator.flagsRequestCount).toBe(0);
    expect(emulator.definitionsFetchCount).toBe(1);
    const request = emulator.requests.find((r) => r.endpoint === 'definitions');
    expect(request).toMatchObject({
      method: 'GET',
      path: '/flags/definitions',
      query: { token: emulator.projectApiKey, send_cohorts: '' },
      status: 200,
    });
    expect(request?.headers.authorization).toBe('Bearer phx_***');
  });

  it('answers 304 to a matching ETag and counts both kinds', async () => {
    const first = await definitions(emulator);
    expect(first.status).toBe(200);
    const etag = first.headers.get('etag');
    expect(etag).toBe(emulator.etag);
    const body = await first.json();
    expect(body).toEqual({
      flags: emulator.flags,
      group_type_mapping: { '0': 'company' },
      cohorts: {},
    });

    const again = await definitions(emulator, { 'if-none-match': etag! });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    expect(again.headers.get('etag')).toBe(etag);
    expect((await definitions(emulator, { 'if-none-match': `W/${etag}` })).status).toBe(304);
    expect((await definitions(emulator, { 'if-none-match': '"stale"' })).status).toBe(200);

    expect(emulator.definitionsFetchCount).toBe(4);
    expect(emulator.definitionsServedCount).toBe(2);
    expect(emulator.definitionsNotModifiedCount).toBe(2);
  });

  it('serves posthog-node polling with 304s until setFlags changes the ETag', async () => {
    const client = clientFor(emulator, {
      personalApiKey: emulator.personalApiKey,
      featureFlagsPollingInterval: 100,
    });
    expect(await readFlag(client, 'brand-new', 'u1', { onlyEvaluateLocally: true })).toBe(
      undefined,
    );
    await until(() => emulator.definitionsNotModifiedCount >= 2);
    expect(emulator.definitionsServedCount).toBe(1);

    const before = emulator.etag;
    emulator.setFlags([flag('brand-new')]);
    expect(emulator.etag).not.toBe(before);
    await until(() => emulator.definitionsServedCount === 2);
    await client.reloadFeatureFlags();
    expect(await readFlag(client, 'brand-new', 'u1', { onlyEvaluateLocally: true })).toBe(true);
    // The old mapping is kept when setFlags does not pass one.
    expect((await (await definitions(emulator)).json()).group_type_mapping).toEqual({
      '0': 'company',
    });
  });

  it('answers 401 with a detail for a wrong bearer or token', async () => {
    const wrong = await fetch(`${emulator.url}/flags/definitions?token=${emulator.projectApiKey}`, {
      headers: { authorization: 'Bearer phx_wrong' },
    });
    expect(wrong.status).toBe(401);
    expect((await wrong.json()).detail).toMatch(/Personal API key is invalid/);
    const missing = await fetch(
      `${emulator.url}/flags/definitions?token=${emulator.projectApiKey}`,
    );
    expect(missing.status).toBe(401);
    expect((await definitions(emulator, {}, 'phc_other')).status).toBe(401);

    const errors: unknown[] = [];
    const client = clientFor(emulator, {
      personalApiKey: 'phx_wrong',
      featureFlagsPollingInterval: null,
    });
    client.on('error', (error) => errors.push(error));
    expect(await readFlag(client, 'plan-gate', 'u1', { onlyEvaluateLocally: true })).toBe(
      undefined,
    );
    expect(String(errors[0])).toMatch(/project key or secret key is invalid/);
  });

  it('fills in hand-written definitions and refuses duplicate keys', async () => {
    emulator.setFlags([
      { key: 'bare' },
      { key: 'gone', deleted: true },
      { key: 'empty', filters: {} },
      { key: 'off', active: false },
    ]);
    expect(emulator.flags.map((f) => [f.key, f.active])).toEqual([
      ['bare', true],
      ['empty', true],
      ['off', false],
    ]);
    const flags = await clientFor(emulator).getAllFlags('u1');
    expect(flags).toEqual({ bare: true, empty: false });
    expect(() => emulator.setFlags([{ key: 'a' }, { key: 'a' }])).toThrow(/"a" appears twice/);
    expect(() => emulator.setFlags([{} as { key: string }])).toThrow(/needs a string "key"/);
  });

  it('also answers the legacy local_evaluation path', async () => {
    const response = await fetch(
      `${emulator.url}/api/feature_flag/local_evaluation?token=${emulator.projectApiKey}&send_cohorts`,
      { headers: { authorization: `Bearer ${emulator.personalApiKey}` } },
    );
    expect(response.status).toBe(200);
    expect((await response.json()).flags).toHaveLength(2);
  });
});
