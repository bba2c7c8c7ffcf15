import { createHash } from 'node:crypto';
import { flag, type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clientFor, post, readFlag, readPayload, shutdownClients } from './helpers.ts';

// 0xfffffffffffffff, the divisor PostHog uses, is exactly this double at runtime.
const LONG_SCALE = 2 ** 60;

/** PostHog's documented bucketing: sha1("key.id"), first 15 hex digits, scaled to [0, 1]. */
const bucket = (key: string, id: string, salt = '') =>
  Number.parseInt(createHash('sha1').update(`${key}.${id}${salt}`).digest('hex').slice(0, 15), 16) /
  LONG_SCALE;

const users = Array.from({ length: 60 }, (_, i) => `user-${i}`);

let emulator: PostHogEmulator;

beforeAll(async () => {
  emulator = await startEmulator({
    groupTypeMapping: { '0': 'company' },
    cohorts: {
      '7': {
        type: 'OR',
        values: [
          {
            type: 'AND',
            values: [{ key: 'email', value: '@acme.com', operator: 'icontains', type: 'person' }],
          },
        ],
      },
    },
    flags: [
      flag('half', { rollout: 50 }),
      flag('plan-gate', {
        conditions: [{ properties: [{ key: 'plan', value: ['pro', 'enterprise'] }] }],
        payload: { seats: 10 },
      }),
      flag('exp', {
        variants: { control: 50, test: 50 },
        payloads: { test: { color: 'red' }, control: 'plain' },
      }),
      flag('forced', {
        variants: { a: 50, b: 50 },
        conditions: [{ properties: [{ key: 'beta', value: true }], variant: 'b' }],
      }),
      flag('off', { active: false }),
      flag('company-flag', {
        groupTypeIndex: 0,
        conditions: [{ properties: [{ key: 'size', value: 100, operator: 'gt' }] }],
      }),
      flag('acme-staff', {
        conditions: [{ properties: [{ key: '7', type: 'cohort', value: 7 }] }],
      }),
      flag('static-cohort', {
        conditions: [{ properties: [{ key: '99', type: 'cohort', value: 99 }] }],
      }),
    ],
  });
});
afterEach(() => shutdownClients());
afterAll(() => emulator.close());

describe('remote evaluation (/flags)', () => {
  it('buckets rollouts exactly as PostHog hashes them', async () => {
    const client = clientFor(emulator);
    for (const id of users) {
      const expected = bucket('half', id) <= 0.5;
      expect(await readFlag(client, 'half', id, { sendFeatureFlagEvents: false })).toBe(expected);
    }
    const on = users.filter((id) => bucket('half', id) <= 0.5).length;
    expect(on).toBeGreaterThan(15);
    expect(on).toBeLessThan(45);
  });

  it('splits variants and forces a condition variant', async () => {
    const client = clientFor(emulator);
    const seen = new Set<unknown>();
    for (const id of users.slice(0, 30)) {
      const variant = await readFlag(client, 'exp', id, { sendFeatureFlagEvents: false });
      expect(variant).toBe(bucket('exp', id, 'variant') < 0.5 ? 'control' : 'test');
      seen.add(variant);
    }
    expect(seen).toEqual(new Set(['control', 'test']));
    const forced = await readFlag(client, 'forced', 'u', {
      personProperties: { beta: 'true' },
      sendFeatureFlagEvents: false,
    });
    expect(forced).toBe('b');
  });

  it('matches person properties and returns payloads', async () => {
    const client = clientFor(emulator);
    const pro = await client.getAllFlagsAndPayloads('u1', { personProperties: { plan: 'pro' } });
    expect(pro.featureFlags?.['plan-gate']).toBe(true);
    expect(pro.featureFlagPayloads?.['plan-gate']).toEqual({ seats: 10 });
    const free = await client.getAllFlags('u1', { personProperties: { plan: 'free' } });
    expect(free['plan-gate']).toBe(false);
    // A property the request does not carry is "not set", as for a person without it.
    const unknown = await client.getAllFlags('u1');
    expect(unknown['plan-gate']).toBe(false);

    const testUser = users.find((id) => bucket('exp', id, 'variant') >= 0.5)!;
    const controlUser = users.find((id) => bucket('exp', id, 'variant') < 0.5)!;
    expect(await readPayload(client, 'exp', testUser)).toEqual({ color: 'red' });
    expect(await readPayload(client, 'exp', controlUser)).toBe('plain');
  });

  it('evaluates group flags with the groups and group properties sent', async () => {
    const client = clientFor(emulator);
    const big = await client.getAllFlags('u1', {
      groups: { company: 'acme' },
      groupProperties: { company: { size: 500 } },
    });
    expect(big['company-flag']).toBe(true);
    const small = await client.getAllFlags('u1', {
      groups: { company: 'tiny' },
      groupProperties: { company: { size: 3 } },
    });
    expect(small['company-flag']).toBe(false);
    const none = await client.getAllFlags('u1');
    expect(none['company-flag']).toBe(false);
  });

  it('evaluates cohorts it was given; omits inactive flags; answers false for server-only data', async () => {
    const client = clientFor(emulator);
    const flags = await client.getAllFlags('u1', { personProperties: { email: 'ann@acme.com' } });
    expect(flags['acme-staff']).toBe(true);
    expect(flags).not.toHaveProperty('off');
    expect(flags['static-cohort']).toBe(false);
  });

  it('answers the v2 shape posthog-node reads, with only the keys asked for', async () => {
    const response = await post(`${emulator.url}/flags/?v=2`, {
      token: emulator.projectApiKey,
      distinct_id: 'u1',
      person_properties: { plan: 'pro' },
      flag_keys_to_evaluate: ['plan-gate', 'static-cohort', 'off'],
    });
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(Object.keys(body.flags).sort()).toEqual(['plan-gate', 'static-cohort']);
    expect(body).toMatchObject({ errorsWhileComputingFlags: false, requestId: expect.any(String) });
    expect(body.flags['plan-gate']).toEqual({
      key: 'plan-gate',
      enabled: true,
      variant: null,
      reason: { code: 'condition_match', condition_index: null, description: expect.any(String) },
      metadata: {
        id: expect.any(Number),
        version: 1,
        description: '',
        payload: JSON.stringify({ seats: 10 }),
      },
    });
    expect(body.flags['static-cohort']).toMatchObject({
      enabled: false,
      reason: { code: 'unsupported_by_emulator' },
    });
  });

  it('answers /decide/ in the same v2 shape', async () => {
    const response = await post(`${emulator.url}/decide/?v=3`, {
      api_key: emulator.projectApiKey,
      distinct_id: 'u1',
      person_properties: { plan: 'pro' },
    });
    const body = await response.json();
    expect(body.flags['plan-gate']).toMatchObject({ enabled: true, key: 'plan-gate' });
  });

  it('answers 401 for a wrong token and 400 for garbage', async () => {
    const wrong = await post(`${emulator.url}/flags/?v=2`, { token: 'phc_nope', distinct_id: 'u' });
    expect(wrong.status).toBe(401);
    const garbage = await post(`${emulator.url}/flags/?v=2`, undefined, { raw: 'nope' });
    expect(garbage.status).toBe(400);

    const client = clientFor({ url: emulator.url, projectApiKey: 'phc_nope' });
    expect(await readFlag(client, 'half', 'u1', { sendFeatureFlagEvents: false })).toBeUndefined();
  });

  it('records $feature_flag_called events for flags read from a remote snapshot', async () => {
    emulator.reset();
    const client = clientFor(emulator);
    await readFlag(client, 'plan-gate', 'u9', { personProperties: { plan: 'pro' } });
    const [called] = await emulator.waitForEvents({ event: '$feature_flag_called' });
    expect(called?.properties).toMatchObject({
      $feature_flag: 'plan-gate',
      $feature_flag_response: true,
    });
  });
});

describe('flag()', () => {
  it('builds a full PostHog definition', () => {
    expect(
      flag('exp', {
        variants: { control: 50, test: 50 },
        payloads: { test: { a: 1 } },
        groupTypeIndex: 1,
      }),
    ).toEqual({
      id: expect.any(Number),
      key: 'exp',
      name: '',
      active: true,
      deleted: false,
      ensure_experience_continuity: false,
      filters: {
        groups: [{ properties: [], rollout_percentage: 100 }],
        multivariate: {
          variants: [
            { key: 'control', name: 'control', rollout_percentage: 50 },
            { key: 'test', name: 'test', rollout_percentage: 50 },
          ],
        },
        payloads: { test: '{"a":1}' },
        aggregation_group_type_index: 1,
      },
    });
    expect(flag('a').id).toBe(flag('a').id);
    expect(() => flag('bad', { variants: { a: 60, b: 60 } })).toThrow(/add up to 100, got 120/);
    expect(() => flag('bad', { rollout: 150 })).toThrow(/rollout must be a number from 0 to 100/);
  });
});
