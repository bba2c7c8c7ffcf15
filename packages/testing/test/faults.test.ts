import { type Fault, flag, type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clientFor, post, readFlag, shutdownClients } from './helpers.ts';

let emulator: PostHogEmulator;

beforeAll(async () => {
  emulator = await startEmulator({ flags: [flag('on')] });
});
afterEach(async () => {
  await shutdownClients();
  emulator.reset();
});
afterAll(() => emulator.close());

const event = (name: string) => ({
  api_key: 'phc_test_emulator',
  batch: [{ event: name, distinct_id: 'd' }],
});
const statuses = (kind: string) =>
  emulator.requests.filter((r) => r.endpoint === kind).map((r) => r.status);

describe('fault injection', () => {
  it('answers a status to the next N requests, records nothing, then recovers', async () => {
    emulator.fault('batch', { status: 503, times: 2 });
    // posthog-node retries 408, 429 and 5xx on /batch/ (fetchRetryCount, default 3).
    const client = clientFor(emulator, { fetchRetryCount: 3 });
    client.capture({ distinctId: 'u1', event: 'survived' });
    await client.flush();
    expect(statuses('batch')).toEqual([503, 503, 200]);
    expect(emulator.requests.map((r) => r.fault)).toEqual(['status', 'status', undefined]);
    expect(emulator.events.map((e) => e.event)).toEqual(['survived']);
  });

  it('fails /flags for posthog-node (no retry on 500, one retry on 502)', async () => {
    const client = clientFor(emulator);
    const read = () => readFlag(client, 'on', 'u1', { sendFeatureFlagEvents: false });
    emulator.fault('flags', { status: 500, times: 1 });
    expect(await read()).toBeUndefined();
    expect(await read()).toBe(true);
    emulator.fault('flags', { status: 502, times: 1 });
    expect(await read()).toBe(true);
    expect(statuses('flags')).toEqual([500, 200, 502, 200]);
  });

  it('sends a custom body and headers', async () => {
    emulator.fault('batch', {
      status: 429,
      body: { error: 'slow down' },
      headers: { 'retry-after': '1' },
      times: 1,
    });
    const limited = await post(`${emulator.url}/batch/`, event('x'));
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(await limited.json()).toEqual({ error: 'slow down' });
    expect(emulator.events).toEqual([]);
  });

  it('adds latency, enough to trip posthog-node timeouts', async () => {
    emulator.fault('batch', { delayMs: 200, times: 1 });
    const started = Date.now();
    expect((await post(`${emulator.url}/batch/`, event('late'))).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(emulator.events.map((e) => e.event)).toEqual(['late']);

    emulator.fault('flags', { delayMs: 400, times: 2 });
    const client = clientFor(emulator, { featureFlagsRequestTimeoutMs: 100 });
    expect(await readFlag(client, 'on', 'u1', { sendFeatureFlagEvents: false })).toBeUndefined();
  });

  it('drops the connection; posthog-node retries and the event arrives once', async () => {
    emulator.fault('batch', { drop: true, times: 1 });
    await expect(post(`${emulator.url}/batch/`, event('lost'))).rejects.toThrow();
    expect(emulator.events).toEqual([]);

    emulator.fault('batch', { drop: true, times: 1 });
    const client = clientFor(emulator, { fetchRetryCount: 2 });
    client.capture({ distinctId: 'u1', event: 'retried' });
    await client.flush();
    expect(statuses('batch')).toEqual([0, 0, 200]);
    expect(emulator.events.map((e) => e.event)).toEqual(['retried']);
  });

  it('applies faults in the order added, * included, until cleared', async () => {
    emulator.fault('*', { status: 500, times: 1 });
    emulator.fault('batch', { status: 429, times: 1 });
    emulator.fault('definitions', { status: 503 });
    const flags = await post(`${emulator.url}/flags/?v=2`, {
      token: emulator.projectApiKey,
      distinct_id: 'u',
    });
    expect(flags.status).toBe(500);
    expect((await post(`${emulator.url}/batch/`, event('a'))).status).toBe(429);
    expect((await post(`${emulator.url}/batch/`, event('b'))).status).toBe(200);
    const definitions = () =>
      fetch(`${emulator.url}/flags/definitions?token=${emulator.projectApiKey}`, {
        headers: { authorization: `Bearer ${emulator.personalApiKey}` },
      });
    expect((await definitions()).status).toBe(503);
    expect((await definitions()).status).toBe(503);
    emulator.clearFaults();
    expect((await definitions()).status).toBe(200);
    expect(emulator.definitionsFetchCount).toBe(3);
    expect(emulator.definitionsServedCount).toBe(1);
  });

  it('rejects a fault it cannot apply', () => {
    expect(() => emulator.fault('nope' as 'batch', { status: 500 })).toThrow(/endpoint must be/);
    expect(() => emulator.fault('batch', {} as Fault)).toThrow(/give a status, a delayMs or drop/);
    expect(() => emulator.fault('batch', { status: 500, times: 0 })).toThrow(/times must be/);
  });
});
