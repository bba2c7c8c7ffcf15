import { type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clientFor, post, shutdownClients } from './helpers.ts';

let emulator: PostHogEmulator;

beforeAll(async () => {
  emulator = await startEmulator();
});
afterEach(async () => {
  await shutdownClients();
  emulator.reset();
});
afterAll(() => emulator.close());

const batch = (events: unknown[], apiKey = 'phc_test_emulator') => ({
  api_key: apiKey,
  batch: events,
  sent_at: new Date().toISOString(),
});

describe('capture', () => {
  it('keepEvents: false counts events without keeping them', async () => {
    const counting = await startEmulator({ keepEvents: false });
    try {
      const client = clientFor(counting);
      for (let i = 0; i < 30; i++) client.capture({ distinctId: `u${i}`, event: 'load' });
      await client.flush();
      expect(counting.eventCount).toBe(30);
      expect(counting.events).toHaveLength(0);
      counting.reset();
      expect(counting.eventCount).toBe(0);
    } finally {
      await counting.close();
    }
  });

  it('records what posthog-node sends, gzipped, in order', async () => {
    const client = clientFor(emulator);
    client.capture({ distinctId: 'u1', event: 'signed up', properties: { plan: 'pro' } });
    client.capture({ distinctId: 'u2', event: 'paid' });
    await client.flush();

    expect(emulator.events.map((e) => [e.event, e.distinctId])).toEqual([
      ['signed up', 'u1'],
      ['paid', 'u2'],
    ]);
    const [first] = emulator.events;
    expect(first?.properties).toMatchObject({ plan: 'pro', $lib: 'posthog-node' });
    expect(first?.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(first?.timestamp).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(first?.raw.distinct_id).toBe('u1');

    const request = emulator.requests[0];
    expect(request).toMatchObject({
      method: 'POST',
      path: '/batch/',
      endpoint: 'batch',
      status: 200,
    });
    expect(request?.headers['content-encoding']).toBe('gzip');
    expect(request?.headers['user-agent']).toMatch(/^posthog-node\//);
    expect(request?.body).toMatchObject({ api_key: emulator.projectApiKey });
    expect(emulator.batchRequestCount).toBe(
      emulator.requests.filter((r) => r.endpoint === 'batch').length,
    );
  });

  it('accepts plain JSON, gzip without the header, and the other capture paths', async () => {
    const event = (name: string) => ({ event: name, distinct_id: 'd', properties: {} });
    const plain = await post(`${emulator.url}/batch/`, batch([event('plain')]));
    expect(plain.status).toBe(200);
    expect(await plain.json()).toEqual({ status: 1 });

    const sniffed = await post(`${emulator.url}/batch`, batch([event('sniffed')]), {
      gzip: true,
      header: false,
    });
    expect(sniffed.status).toBe(200);

    const single = await post(`${emulator.url}/i/v0/e/`, {
      ...event('single'),
      api_key: emulator.projectApiKey,
    });
    expect(single.status).toBe(200);
    await post(`${emulator.url}/capture/`, batch([event('capture')]));
    await post(`${emulator.url}/e/`, batch([event('e')]));

    expect(emulator.events.map((e) => e.event)).toEqual([
      'plain',
      'sniffed',
      'single',
      'capture',
      'e',
    ]);
  });

  it('answers 401 for a wrong or missing api_key and records nothing', async () => {
    const wrong = await post(
      `${emulator.url}/batch/`,
      batch([{ event: 'x', distinct_id: 'd' }], 'phc_wrong'),
    );
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toHaveProperty('error');
    const missing = await post(`${emulator.url}/batch/`, {
      batch: [{ event: 'x', distinct_id: 'd' }],
    });
    expect(missing.status).toBe(401);

    // posthog-node does not retry a 401; flush() rejects with the status.
    const wrongClient = clientFor(
      { url: emulator.url, projectApiKey: 'phc_wrong' },
      { flushAt: 10 },
    );
    wrongClient.capture({ distinctId: 'd', event: 'rejected' });
    await expect(wrongClient.flush()).rejects.toThrow(/status=401/);
    expect(emulator.events).toEqual([]);
  });

  it('answers 400 to garbage and keeps serving', async () => {
    const garbage = await post(`${emulator.url}/batch/`, undefined, { raw: '{not json' });
    expect(garbage.status).toBe(400);
    expect((await garbage.json()).error).toMatch(/not JSON/);
    const badGzip = await fetch(`${emulator.url}/batch/`, {
      method: 'POST',
      headers: { 'content-encoding': 'gzip' },
      body: 'plain text',
    });
    expect(badGzip.status).toBe(400);
    const notABatch = await post(`${emulator.url}/batch/`, { hello: 'world' });
    expect(notABatch.status).toBe(400);
    const noName = await post(`${emulator.url}/batch/`, batch([{ distinct_id: 'd' }]));
    expect(noName.status).toBe(400);
    const noDistinct = await post(`${emulator.url}/batch/`, batch([{ event: 'x' }]));
    expect(noDistinct.status).toBe(400);
    const wrongMethod = await fetch(`${emulator.url}/batch/`);
    expect(wrongMethod.status).toBe(405);

    const ok = await post(`${emulator.url}/batch/`, batch([{ event: 'fine', distinct_id: 'd' }]));
    expect(ok.status).toBe(200);
    expect(emulator.events.map((e) => e.event)).toEqual(['fine']);
    expect(emulator.requests.map((r) => r.status)).toEqual([400, 400, 400, 400, 400, 405, 200]);
    expect(emulator.requests[0]?.body).toBeUndefined();
  });
});

describe('waitForEvents', () => {
  it('waits for a count, a predicate, or both', async () => {
    const client = clientFor(emulator, { flushAt: 20, flushInterval: 50 });
    const two = emulator.waitForEvents(2);
    const paid = emulator.waitForEvents((e) => e.event === 'paid');
    const named = emulator.waitForEvents({ event: 'viewed', count: 2 });
    client.capture({ distinctId: 'u1', event: 'viewed' });
    client.capture({ distinctId: 'u1', event: 'paid', properties: { amount: 5 } });
    client.capture({ distinctId: 'u2', event: 'viewed' });

    expect((await two).length).toBeGreaterThanOrEqual(2);
    expect((await paid).map((e) => e.properties.amount)).toEqual([5]);
    expect((await named).map((e) => e.distinctId)).toEqual(['u1', 'u2']);
    // Already satisfied: resolves at once with every match so far.
    expect(await emulator.waitForEvents({ predicate: (e) => e.distinctId === 'u2' })).toHaveLength(
      1,
    );
  });

  it('says how many arrived and which when it times out', async () => {
    await post(`${emulator.url}/batch/`, batch([{ event: 'signed up', distinct_id: 'u1' }]));
    const started = Date.now();
    const error = await emulator.waitForEvents(3, 150).catch((e: Error) => e);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/timed out after 150ms waiting for 3 events/);
    expect((error as Error).message).toMatch(/1 arrived: signed up \(u1\)/);

    const named = await emulator.waitForEvents({ event: 'paid' }, 50).catch((e: Error) => e);
    expect((named as Error).message).toMatch(/named "paid".*0 matched/);
  });
});

describe('reset', () => {
  it('clears events, requests, counts and faults but keeps flags', async () => {
    const own = await startEmulator({ flags: [{ key: 'kept' }] });
    try {
      await post(`${own.url}/batch/`, batch([{ event: 'x', distinct_id: 'd' }]));
      await fetch(`${own.url}/flags/definitions?token=phc_test_emulator`, {
        headers: { authorization: `Bearer ${own.personalApiKey}` },
      });
      own.fault('batch', { status: 500 });
      own.reset();
      expect(own.events).toEqual([]);
      expect(own.requests).toEqual([]);
      expect(own.definitionsFetchCount).toBe(0);
      expect(own.batchRequestCount).toBe(0);
      const after = await post(`${own.url}/batch/`, batch([{ event: 'y', distinct_id: 'd' }]));
      expect(after.status).toBe(200);
      expect(own.flags.map((f) => f.key)).toEqual(['kept']);
    } finally {
      await own.close();
    }
  });
});
