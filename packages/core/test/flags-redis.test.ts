// Shared flag definitions through a real redis-server, across real processes: the fetch
// budget of four processes, a killed leader, and Redis itself going away and coming back.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createClient } from '@keyv/redis';
import { type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { afterAll, beforeAll, describe, inject, it, type TestContext } from 'vitest';
import { ErrorReporter } from '../src/errors.ts';
import { KeyvLease, RedisLease } from '../src/flags/lease.ts';
import { definitionKeys, GuardedStore, resolveStore } from '../src/flags/store.ts';
import {
  FLAG_KEYS,
  FLAGS,
  PERSON,
  referenceAnswers,
  sleep,
  USERS,
  uniquePrefix,
  until,
} from './flag-cache-helpers.ts';

const redisUrl = inject('redisUrl');
const WORKER = fileURLToPath(new URL('./fixtures/flags-worker.ts', import.meta.url));

interface Status {
  type: 'status' | 'final';
  pid: number;
  token: string | undefined;
  leader: boolean;
  evaluations: number;
  wrong: number;
  firstAnswerMs: number | undefined;
}

/** One worker process and what it reported. */
class Worker {
  readonly proc: ChildProcess;
  status: Status | undefined;
  final: Status | undefined;
  readonly unhandled: string[] = [];
  readonly logs: string[] = [];
  readonly exited: Promise<unknown>;

  constructor(config: Record<string, unknown>) {
    this.proc = spawn(process.execPath, [WORKER], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, FLAGS_WORKER_CONFIG: JSON.stringify(config) },
    });
    this.exited = once(this.proc, 'exit');
    this.proc.on('message', (m: { type: string } & Record<string, unknown>) => {
      if (m.type === 'status') this.status = m as unknown as Status;
      if (m.type === 'final') this.final = m as unknown as Status;
      if (m.type === 'unhandled') this.unhandled.push(String(m.error));
      if (m.type === 'log') this.logs.push(String(m.message));
    });
  }

  /** Asks the worker to stop and waits for it (SIGKILL after 8 s). */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    if (this.proc.connected) this.proc.send('stop');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 8_000);
    await this.exited;
    clearTimeout(timer);
  }
}

// Each test has its own emulator, so the tests run at once (they mostly wait).
describe.skipIf(!redisUrl)(
  'shared flag definitions across processes (Redis)',
  { concurrent: true },
  () => {
    let reference: Record<string, Record<string, boolean | string | undefined>>;
    let raw: ReturnType<typeof createClient>;
    const workers: Worker[] = [];

    const person = Object.fromEntries(USERS.map((u) => [u, PERSON(u)]));
    const newEmulator = async (onTestFinished: TestContext['onTestFinished']) => {
      const emulator = await startEmulator({ flags: FLAGS });
      onTestFinished(() => emulator.close());
      return emulator;
    };
    const spawnWorkers = (
      emulator: PostHogEmulator,
      count: number,
      config: Record<string, unknown>,
    ) => {
      const started = Array.from(
        { length: count },
        () =>
          new Worker({
            host: emulator.url,
            apiKey: emulator.projectApiKey,
            personalApiKey: emulator.personalApiKey,
            redisUrl,
            expected: reference,
            person,
            ...config,
          }),
      );
      workers.push(...started);
      return started;
    };

    beforeAll(async () => {
      const emulator = await startEmulator({ flags: FLAGS });
      reference = await referenceAnswers(emulator);
      await emulator.close();
      raw = createClient({ url: redisUrl });
      await raw.connect();
    });
    afterAll(async () => {
      await Promise.all(workers.map((w) => w.stop()));
      await raw?.close();
    });

    it('four processes polling every second for 6 s fetch definitions at most 8 times, every answer right', async ({
      expect,
      onTestFinished,
      annotate,
    }) => {
      const emulator = await newEmulator(onTestFinished);
      const group = spawnWorkers(emulator, 4, {
        prefix: uniquePrefix('four'),
        pollMs: 1_000,
        lockTtlMs: 2_000,
        cacheTtlMs: 10_000,
      });
      // 6 s of all four evaluating; every fetch counts, those of the start-up included.
      const running = () => group.every((w) => (w.status?.evaluations ?? 0) > 0);
      expect(await until(running, 15_000)).toBe(true);
      await sleep(6_000);
      await Promise.all(group.map((w) => w.stop()));
      for (const w of group) {
        expect(w.unhandled).toEqual([]);
        expect(w.final?.evaluations).toBeGreaterThan(USERS.length * FLAG_KEYS.length);
        expect(w.final?.wrong).toBe(0);
        expect(w.proc.exitCode).toBe(0);
      }
      await annotate(
        `${emulator.definitionsFetchCount} definitions fetches by 4 processes (start-up and 6 s)`,
      );
      expect(emulator.definitionsFetchCount).toBeLessThanOrEqual(8);
      expect(emulator.flagsRequestCount).toBe(0);
    }, 20_000);

    it('a killed leader: a follower takes over within one lease TTL and fetches', async ({
      expect,
      onTestFinished,
      annotate,
    }) => {
      const emulator = await newEmulator(onTestFinished);
      const prefix = uniquePrefix('kill');
      const lockTtlMs = 1_500;
      const group = spawnWorkers(emulator, 3, {
        prefix,
        pollMs: 500,
        lockTtlMs,
        cacheTtlMs: 10_000,
      });
      const lockKey = (await definitionKeys(prefix, emulator.url, emulator.projectApiKey)).lock;
      const ready = () =>
        group.every((w) => (w.status?.evaluations ?? 0) > 0) &&
        group.filter((w) => w.status?.leader).length === 1;
      expect(await until(ready, 10_000)).toBe(true);
      const leader = group.find((w) => w.status?.leader) as Worker;
      expect(await raw.get(lockKey)).toBe(leader.status?.token);

      const servedBefore = emulator.definitionsServedCount;
      const killedAt = Date.now();
      leader.proc.kill('SIGKILL');
      await leader.exited;
      const tokens = group.filter((w) => w !== leader).map((w) => w.status?.token);
      let takeoverMs = Number.POSITIVE_INFINITY;
      const taken = await until(async () => {
        const owner = await raw.get(lockKey);
        if (owner && tokens.includes(owner)) {
          takeoverMs = Date.now() - killedAt;
          return true;
        }
        return false;
      }, lockTtlMs + 3_000);
      expect(taken).toBe(true);
      await annotate(`taken over ${takeoverMs} ms after the kill (lease TTL ${lockTtlMs} ms)`);
      // The lease ends at most one TTL after the leader's last renewal; the follower was waiting for that moment.
      expect(takeoverMs).toBeLessThanOrEqual(lockTtlMs + 500);
      // The new leader fetches a full copy at once and publishes it.
      expect(await until(() => emulator.definitionsServedCount > servedBefore, 2_000)).toBe(true);
      const rest = group.filter((w) => w !== leader);
      await Promise.all(rest.map((w) => w.stop()));
      for (const w of rest) {
        expect(w.unhandled).toEqual([]);
        expect(w.final?.wrong).toBe(0);
      }
    }, 20_000);

    it('the Redis lease is atomic: one owner, extended and released only by it', async ({
      expect,
    }) => {
      const errors = new ErrorReporter('ignore', undefined, []);
      const store = new GuardedStore(resolveStore(undefined, redisUrl), errors);
      const key = `${uniquePrefix('lease')}:lock`;
      const a = new RedisLease(store, key, 'owner-a', 2_000);
      const b = new RedisLease(store, key, 'owner-b', 2_000);
      try {
        // Many at once: exactly one wins.
        const attempts = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            new RedisLease(store, key, `racer-${i}`, 2_000).acquire(),
          ),
        );
        expect(attempts.filter((x) => x?.held)).toHaveLength(1);
        await raw.del(key);

        expect(await a.acquire()).toEqual({
          held: true,
          acquired: true,
          retryInMs: undefined,
          owner: 'owner-a',
        });
        const other = await b.acquire();
        expect(other?.held).toBe(false);
        expect(other?.owner).toBe('owner-a');
        expect(other?.retryInMs).toBeGreaterThan(1_500);
        expect(await a.acquire()).toEqual({
          held: true,
          acquired: false,
          retryInMs: undefined,
          owner: 'owner-a',
        });
        await b.release(); // not the owner: nothing happens
        expect(await raw.get(key)).toBe('owner-a');
        await a.release();
        expect(await raw.get(key)).toBeNull();
        expect((await b.acquire())?.held).toBe(true);

        // A lock left without expiry by something else gets one instead of blocking forever.
        await raw.set(key, 'stranger');
        expect((await a.acquire())?.held).toBe(false);
        expect(await raw.pTTL(key)).toBeGreaterThan(0);
      } finally {
        await raw.del(key);
        await store.close();
      }
    });
  },
);

describe('the best-effort lease on another Keyv store', () => {
  it('one owner at a time, released only by it; racers in one process settle on one', async ({
    expect,
  }) => {
    const { Keyv } = await import('keyv');
    const errors = new ErrorReporter('ignore', undefined, []);
    const store = new GuardedStore(resolveStore(new Keyv(), undefined), errors);
    const a = new KeyvLease(store, 'lock', 'owner-a', 1_000);
    const b = new KeyvLease(store, 'lock', 'owner-b', 1_000);
    expect((await a.acquire())?.held).toBe(true);
    expect((await b.acquire())?.held).toBe(false);
    await b.release();
    expect((await a.acquire())?.acquired).toBe(false);
    await a.release();
    expect((await b.acquire())?.held).toBe(true);
    const racers = await Promise.all(
      Array.from({ length: 5 }, (_, i) => new KeyvLease(store, 'lock2', `r${i}`, 1_000).acquire()),
    );
    expect(racers.filter((x) => x?.held)).toHaveLength(1);
    await store.close();
  });
});
