import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  type FlagDefinition,
  flag,
  type PostHogEmulator,
  type RecordedEvent,
  type RecordedRequest,
  startEmulator,
} from '@posthog-kit/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clientFor, post, readFlag, shutdownClients } from './helpers.ts';

let emulator: PostHogEmulator;

beforeAll(async () => {
  emulator = await startEmulator({
    projectApiKey: 'phc_inspect_project',
    personalApiKey: 'phx_inspect_personal',
    flags: [flag('on')],
  });
});
afterEach(async () => {
  await shutdownClients();
  emulator.reset();
});
afterAll(() => emulator.close());

/** What the view answers, all fields together (each endpoint fills some). */
interface ViewBody {
  events: RecordedEvent[];
  requests: RecordedRequest[];
  flags: FlagDefinition[];
  endpoints: Record<string, string>;
  error: string;
  etag: string;
}

/** GET from the emulator's read-only view, as a test in another language would. */
async function view(path: string): Promise<{ status: number; text: string; body: ViewBody }> {
  const response = await fetch(`${emulator.url}/_emulator/${path}`);
  const text = await response.text();
  return { status: response.status, text, body: JSON.parse(text) };
}

const noKeys = (text: string) => {
  for (const key of ['phc_inspect_project', 'phx_inspect_personal', 'inspect_project']) {
    expect(text).not.toContain(key);
  }
};

describe('GET /_emulator/events', () => {
  it('returns every accepted event, whole, and filters by name, distinct id and time', async () => {
    const client = clientFor(emulator);
    const long = 'x'.repeat(5000);
    client.capture({ distinctId: 'u1', event: 'signed up', properties: { plan: 'pro', long } });
    await client.flush();
    const between = Date.now();
    await new Promise((r) => setTimeout(r, 5));
    client.capture({ distinctId: 'u2', event: 'paid', properties: { amount: 5 } });
    client.capture({ distinctId: 'u1', event: 'paid', properties: { amount: 7 } });
    await client.flush();

    const all = await view('events');
    expect(all.status).toBe(200);
    expect(all.body.events.map((e) => [e.event, e.distinctId])).toEqual([
      ['signed up', 'u1'],
      ['paid', 'u2'],
      ['paid', 'u1'],
    ]);
    const [first] = all.body.events;
    expect(first?.properties).toMatchObject({ plan: 'pro', long, $lib: 'posthog-node' });
    expect(first).toMatchObject({
      uuid: emulator.events[0]?.uuid,
      timestamp: emulator.events[0]?.timestamp,
      receivedAt: emulator.events[0]?.receivedAt,
    });
    expect(first?.raw.distinct_id).toBe('u1');

    const paid = await view('events?event=paid');
    expect(paid.body.events.map((e) => e.properties.amount)).toEqual([5, 7]);
    const u1 = await view('events?event=paid&distinct_id=u1');
    expect(u1.body.events.map((e) => e.properties.amount)).toEqual([7]);
    const either = await view(`events?event=${encodeURIComponent('signed up')}&event=paid`);
    expect(either.body.events).toHaveLength(3);
    const later = await view(`events?since=${between}`);
    expect(later.body.events.map((e) => e.event)).toEqual(['paid', 'paid']);
    const iso = await view(`events?since=${encodeURIComponent(new Date(between).toISOString())}`);
    expect(iso.body.events).toHaveLength(2);
  });

  it('waits for events with count and timeout; answers 408 with what matched on timeout', async () => {
    const waiting = view('events?event=late&count=2&timeout=5000');
    await new Promise((r) => setTimeout(r, 50));
    const client = clientFor(emulator, { flushAt: 20, flushInterval: 100 });
    client.capture({ distinctId: 'u1', event: 'late' });
    client.capture({ distinctId: 'u2', event: 'other' });
    client.capture({ distinctId: 'u3', event: 'late' });
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect(answer.body.events.map((e) => e.distinctId)).toEqual(['u1', 'u3']);

    const started = Date.now();
    const timedOut = await view('events?event=late&count=3&timeout=150');
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(timedOut.status).toBe(408);
    expect(timedOut.body.error).toMatch(/timed out after 150ms waiting for 3 events/);
    expect(timedOut.body.events).toHaveLength(2);
  });

  it('masks keys wherever an event carries one', async () => {
    const sent = await post(`${emulator.url}/i/v0/e/`, {
      event: 'leaky',
      distinct_id: 'd',
      api_key: 'phc_inspect_project',
      properties: { token: 'phc_inspect_project', note: 'key phx_inspect_personal here' },
    });
    expect(sent.status).toBe(200);
    const { text, body } = await view('events');
    noKeys(text);
    expect(body.events[0]?.properties).toMatchObject({
      token: 'phc_***',
      note: 'key phx_*** here',
    });
    expect(body.events[0]?.raw.api_key).toBe('phc_***');
    // In process, the recording is untouched.
    expect(emulator.events[0]?.raw.api_key).toBe('phc_inspect_project');
  });
});

describe('GET /_emulator/requests', () => {
  it('lists requests by endpoint with keys masked, and is not recorded itself', async () => {
    const client = clientFor(emulator, {
      personalApiKey: emulator.personalApiKey,
      featureFlagsPollingInterval: null,
    });
    const local = { onlyEvaluateLocally: true, sendFeatureFlagEvents: false };
    expect(await readFlag(client, 'on', 'u1', local)).toBe(true);
    const remote = clientFor(emulator);
    expect(await readFlag(remote, 'on', 'u1', { sendFeatureFlagEvents: false })).toBe(true);
    remote.capture({ distinctId: 'u1', event: 'e' });
    await remote.flush();

    const fetches = await view('requests?endpoint=definitions');
    expect(fetches.status).toBe(200);
    expect(fetches.body.requests).toHaveLength(1);
    expect(fetches.body.requests[0]).toMatchObject({
      method: 'GET',
      path: '/flags/definitions',
      status: 200,
      query: { token: 'phc_***' },
      headers: { authorization: 'Bearer phx_***' },
    });
    const flags = await view('requests?endpoint=flags');
    expect(flags.body.requests[0]?.body).toMatchObject({ token: 'phc_***', distinct_id: 'u1' });
    const batches = await view('requests?method=post&path=/batch');
    expect(batches.body.requests.map((r) => r.endpoint)).toEqual(['batch']);
    expect(batches.body.requests[0]?.body).toMatchObject({ api_key: 'phc_***' });

    const all = await view('requests');
    noKeys(all.text);
    expect(all.body.requests.map((r) => r.endpoint)).toEqual(['definitions', 'flags', 'batch']);
    expect(emulator.requests.some((r) => r.path.startsWith('/_emulator'))).toBe(false);
  });
});

describe('the rest of /_emulator', () => {
  it('counts, serves the flags, lists its endpoints, and refuses what it cannot read', async () => {
    await post(`${emulator.url}/batch/`, {
      api_key: 'phc_inspect_project',
      batch: [{ event: 'x', distinct_id: 'd' }],
    });
    const stats = await view('stats');
    expect(stats.body).toMatchObject({
      eventCount: 1,
      keepEvents: true,
      batchRequestCount: 1,
      flagsRequestCount: 0,
      definitionsFetchCount: 0,
      requestCount: 1,
    });
    const served = await view('flags');
    expect(served.body.flags.map((f) => f.key)).toEqual(['on']);
    expect(served.body.etag).toBe(emulator.etag);
    expect(Object.keys((await view('')).body.endpoints)).toContain('/_emulator/events');

    expect((await view('nothing')).status).toBe(404);
    expect((await view('events?since=yesterday')).status).toBe(400);
    expect((await view('events?count=0')).body.error).toMatch(/count: expected a whole number/);
    expect((await view('requests?endpoint=nope')).status).toBe(400);
    const write = await fetch(`${emulator.url}/_emulator/events`, { method: 'DELETE' });
    expect(write.status).toBe(405);
    // Faults shape PostHog's endpoints, never the view of the recording.
    emulator.fault('*', { status: 500 });
    expect((await view('events')).status).toBe(200);
  });

  it('says that a counting emulator has no events to wait for', async () => {
    const counting = await startEmulator({ keepEvents: false });
    try {
      const answer = await fetch(`${counting.url}/_emulator/events?count=1`);
      expect(answer.status).toBe(400);
      expect((await answer.json()).error).toMatch(/only counts events/);
    } finally {
      await counting.close();
    }
  });
});

describe('CLI --json', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
  });

  it('prints each event whole as one JSON line on stdout, everything else on stderr', async () => {
    const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
    const proc = spawn(process.execPath, [cli, '--json', '--project-key', 'phc_inspect_project'], {
      stdio: 'pipe',
    });
    child = proc;
    let stdout = '';
    let stderr = '';
    proc.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    proc.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const until = async (condition: () => boolean, what: string) => {
      const deadline = Date.now() + 8000;
      while (!condition()) {
        if (Date.now() > deadline)
          throw new Error(`${what}; stdout:\n${stdout}\nstderr:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await until(() => /listening on http/.test(stderr), 'the CLI never said where it listens');
    const url = /^PostHog emulator listening on (\S+)$/m.exec(stderr)?.[1];
    expect(stderr.split('\n')[0]).toMatch(/^PostHog emulator listening on /);

    const client = clientFor({ url: url!, projectApiKey: 'phc_inspect_project' });
    const long = 'y'.repeat(3000);
    client.capture({ distinctId: 'u1', event: 'signed up', properties: { plan: 'pro', long } });
    client.capture({
      distinctId: 'u2',
      event: 'paid',
      properties: { token: 'phc_inspect_project' },
    });
    await client.flush();
    await until(() => stdout.split('\n').filter(Boolean).length === 2, 'two JSON lines');

    const lines = stdout.trim().split('\n');
    const events = lines.map((line) => JSON.parse(line));
    expect(events.map((e) => [e.event, e.distinctId])).toEqual([
      ['signed up', 'u1'],
      ['paid', 'u2'],
    ]);
    expect(events[0].properties).toMatchObject({ plan: 'pro', long });
    expect(events[0]).toHaveProperty('uuid');
    expect(events[0]).toHaveProperty('raw');
    expect(events[1].properties.token).toBe('phc_***');
    noKeys(stdout + stderr);
    // The same events, from outside the process.
    const viewed = await (await fetch(`${url}/_emulator/events`)).json();
    expect(viewed.events).toEqual(events);
    await until(() => /POST \/batch\/ -> 200/.test(stderr), 'the request line on stderr');

    const exited = new Promise<number | null>((resolve) => proc.on('exit', resolve));
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
