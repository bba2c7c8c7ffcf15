import { type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PostHogKit } from '../src/index.ts';
import { kitFor, memoryLogger } from './helpers.ts';

let emulator: PostHogEmulator;
const kits: PostHogKit[] = [];
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await Promise.all(kits.map((k) => k.shutdown(1_000)));
  await emulator.close();
});
beforeEach(() => emulator.reset());

describe('a poison event never costs its batch', () => {
  it.each([
    [
      'a throwing getter',
      () => ({
        get boom(): never {
          throw new Error('lazy session expired');
        },
      }),
    ],
    [
      'a revoked Proxy',
      () => {
        const { proxy, revoke } = Proxy.revocable({}, {});
        revoke();
        return proxy;
      },
    ],
    [
      'a toJSON that throws',
      () => ({
        toJSON() {
          throw new Error('cannot serialise');
        },
      }),
    ],
    [
      'a circular reference',
      () => {
        const loop: Record<string, unknown> = { a: [1] };
        (loop.a as unknown[]).push({ back: loop });
        return loop;
      },
    ],
    [
      'a throwing getter deep in an array',
      () => [
        {
          list: [
            1,
            {
              get boom(): never {
                throw new Error('deep');
              },
            },
          ],
        },
      ],
    ],
  ])(
    '599 good events and two with %s: all 601 arrive, the bad value replaced, said once',
    async (_name, bad) => {
      const logger = memoryLogger();
      const kit = kitFor(emulator, { logger, clientOptions: { flushAt: 10_000 } });
      kits.push(kit);
      for (let i = 0; i < 300; i++) kit.capture('good', { distinctId: `u${i}` });
      kit.capture('poison', { distinctId: 'p', properties: { ok: 1, bad: bad() } });
      kit.capture('poison', { distinctId: 'p2', properties: { bad: bad() } });
      for (let i = 0; i < 299; i++) kit.capture('good', { distinctId: `v${i}` });
      await kit.flush();
      expect(emulator.events.filter((e) => e.event === 'good')).toHaveLength(599);
      const poison = emulator.events.filter((e) => e.event === 'poison');
      expect(poison).toHaveLength(2);
      expect(poison[0]?.properties.ok).toBe(1);
      for (const e of poison)
        expect(JSON.stringify(e.properties.bad)).toContain('not serialisable');
      expect(logger.lines.filter((l) => l.includes('could not be serialised'))).toHaveLength(1);
      await kit.shutdown(1_000);
    },
  );
});

it('what JSON writes is sent as it is, said nowhere: deep nesting, Dates, class instances, toJSON', async () => {
  const logger = memoryLogger();
  const kit = kitFor(emulator, { logger });
  kits.push(kit);
  let deep: Record<string, unknown> = { leaf: 'bottom' };
  for (let i = 0; i < 30; i++) deep = { next: deep };
  class Point {
    x = 1;
    y = 2;
  }
  const properties = {
    deep,
    when: new Date(Date.UTC(2026, 11, 1)),
    point: new Point(),
    money: { toJSON: () => '1.00 EUR' },
    bare: Object.assign(Object.create(null), { k: 'v' }),
    skipped: () => 'functions are left out, as JSON does',
  };
  kit.capture('rich', { distinctId: 'r', properties });
  await kit.flush();
  const sent = emulator.events.find((e) => e.event === 'rich')?.properties;
  expect(sent).toMatchObject(JSON.parse(JSON.stringify(properties)));
  expect(sent).not.toHaveProperty('skipped');
  expect(logger.lines.filter((l) => l.includes('serialised'))).toEqual([]);
});

it('a BigInt property is sent as its digits', async () => {
  const kit = kitFor(emulator, { logger: memoryLogger() });
  kits.push(kit);
  kit.capture('big', { distinctId: 'b', properties: { n: 10n ** 20n } });
  kit.capture('after', { distinctId: 'b' });
  await kit.flush();
  expect(emulator.events.find((e) => e.event === 'big')?.properties.n).toBe(
    '100000000000000000000',
  );
  expect(emulator.events.map((e) => e.event)).toEqual(['big', 'after']);
});

describe('events dropped at maxQueueSize', () => {
  it('are counted and said once per outage, with the count when there is room again', async () => {
    const logger = memoryLogger();
    const kit = kitFor(emulator, {
      logger,
      clientOptions: { flushAt: 500, flushInterval: 0, maxQueueSize: 1_000, fetchRetryCount: 0 },
    });
    kits.push(kit);
    // PostHog down: nothing leaves the queue while the burst comes in.
    emulator.fault('batch', { status: 503, times: 100 });
    for (let i = 0; i < 1_400; i++) kit.capture('burst', { distinctId: `u${i}` });
    // posthog-node queues each event once it is built (asynchronously).
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(kit.droppedEvents).toBe(400);
    const full = logger.lines.filter((l) => l.includes('event queue is full'));
    expect(full).toHaveLength(1);
    expect(full[0]).toContain('maxQueueSize 1000');
    emulator.clearFaults();
    await kit.flush();
    expect(emulator.events.filter((e) => e.event === 'burst')).toHaveLength(1_000);
    const room = logger.lines.filter((l) => l.includes('has room again'));
    expect(room).toHaveLength(1);
    expect(room[0]).toContain('400 events were dropped');
    await kit.shutdown(1_000);
  });
});
