// Redis slow or flapping while flags are evaluated (shared definitions and the result
// cache on Redis): once definitions are in memory no evaluation fails or is wrong, none
// waits longer than the store timeout, nothing is rejected unhandled, and sharing comes
// back. Redis sits behind a TCP proxy that adds latency or cuts every connection.
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createPostHogKit, type PostHogKit } from '@posthog-kit/core';
import { flag, startEmulator } from '@posthog-kit/testing';
import { afterAll, expect, inject, it } from 'vitest';
import { RedisServer, redisInfo } from '../../test/redis-server.ts';
import { Figures, ms } from './harness.ts';

const STORE_TIMEOUT_MS = 500;
const figures = new Figures(
  'Redis faults while flags are evaluated (2 processes sharing definitions)',
);
afterAll(() => figures.print());

/** A TCP proxy to Redis whose latency and availability the test controls. */
class FaultyProxy {
  delayMs = 0;
  refusing = false;
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  readonly url: string;

  private constructor(server: Server, url: string) {
    this.server = server;
    this.url = url;
  }

  static async start(target: number): Promise<FaultyProxy> {
    let proxy: FaultyProxy | undefined;
    const server = createServer((client) => {
      const p = proxy as FaultyProxy;
      if (p.refusing) return client.destroy();
      const upstream = connect(target, '127.0.0.1');
      for (const s of [client, upstream]) {
        p.sockets.add(s);
        s.on('close', () => p.sockets.delete(s));
        s.on('error', () => {});
      }
      const pipe = (from: Socket, to: Socket) =>
        from.on('data', (chunk) => {
          if (p.delayMs > 0) setTimeout(() => to.writable && to.write(chunk), p.delayMs);
          else if (to.writable) to.write(chunk);
        });
      pipe(client, upstream);
      pipe(upstream, client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    proxy = new FaultyProxy(server, `redis://127.0.0.1:${port}`);
    return proxy;
  }

  /** Cuts every open connection; with `refusing`, new ones too. */
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it.skipIf(!inject('redisUrl'))(
  'Redis slow, then flapping: every evaluation answers right and within the store timeout',
  async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const emulator = await startEmulator({ flags: [flag('everyone', { rollout: 100 })] });
    const redis = await RedisServer.start();
    const proxy = await FaultyProxy.start(Number(new URL(redis.url).port));
    const kits: PostHogKit[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        kits.push(
          createPostHogKit({
            env: {},
            apiKey: emulator.projectApiKey,
            personalApiKey: emulator.personalApiKey,
            host: emulator.url,
            redisUrl: proxy.url,
            pollIntervalMs: 200,
            flagDefinitionsLockTtlMs: 600,
            featureFlagsCacheTtlMs: 2_000,
            logger: { warn: () => {}, error: () => {} },
          }),
        );
      }
      let n = 0;
      // One evaluation per kit and user; `failed` counts wrong or missing answers.
      const round = async () => {
        let failed = 0;
        let slowest = 0;
        for (const kit of kits) {
          const t0 = performance.now();
          const answer = await kit.getFeatureFlag('everyone', { distinctId: `user-${n++ % 50}` });
          slowest = Math.max(slowest, performance.now() - t0);
          if (answer !== true) failed++;
        }
        return { failed, slowest };
      };
      const phase = async (name: string, durationMs: number, during?: () => void) => {
        let evaluations = 0;
        let failed = 0;
        let slowest = 0;
        const end = Date.now() + durationMs;
        while (Date.now() < end) {
          during?.();
          const r = await round();
          evaluations += kits.length;
          failed += r.failed;
          slowest = Math.max(slowest, r.slowest);
          await sleep(20);
        }
        figures.add({
          phase: name,
          evaluations,
          'failed evaluations': failed,
          'slowest ms': ms(slowest),
        });
        return { failed, slowest };
      };

      // Definitions in memory first, as in a running service.
      await Promise.all(kits.map((k) => k.client?.waitForLocalEvaluationReady(5_000)));
      const healthy = await phase('healthy', 1_500);

      proxy.delayMs = 2_000; // slower than the store timeout
      const slow = await phase('Redis answering after 2 s', 3_000);
      proxy.delayMs = 0;

      let flip = Date.now();
      const flapping = await phase('Redis flapping (cut every 300 ms)', 4_000, () => {
        if (Date.now() - flip < 300) return;
        flip = Date.now();
        proxy.refusing = !proxy.refusing;
        proxy.cut();
      });
      proxy.refusing = false;
      const recovered = await phase('Redis back', 3_000);

      for (const p of [healthy, slow, flapping, recovered]) {
        expect(p.failed).toBe(0);
        // At most one store timeout, plus the evaluation itself on a shared machine.
        expect(p.slowest).toBeLessThan(STORE_TIMEOUT_MS + 250);
      }
      // Sharing is back: one leader again.
      await sleep(1_500);
      expect(kits.filter((k) => k.flagsStatus().leader)).toHaveLength(1);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await Promise.all(kits.map((k) => k.shutdown(2_000)));
      await proxy.close();
      await redis.stop();
      await emulator.close();
    }
  },
  60_000,
);

// Redis past its maxmemory with noeviction: writes refused (OOM), reads still answered. The
// store is one outage per process, said once, and once again when it is over.
it.skipIf(!inject('redisUrl'))(
  'Redis at maxmemory (noeviction): one outage line and one recovery line per process, every answer right',
  async () => {
    const emulator = await startEmulator({ flags: [flag('everyone', { rollout: 100 })] });
    const redis = await RedisServer.start({
      args: ['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction'],
    });
    const lines: string[] = [];
    const kits: PostHogKit[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        kits.push(
          createPostHogKit({
            env: {},
            apiKey: emulator.projectApiKey,
            personalApiKey: emulator.personalApiKey,
            host: emulator.url,
            redisUrl: redis.url,
            pollIntervalMs: 200,
            flagDefinitionsLockTtlMs: 600,
            featureFlagsCacheTtlMs: 60_000,
            logger: { warn: (m) => lines.push(m), error: (m) => lines.push(m) },
          }),
        );
      }
      await Promise.all(kits.map((k) => k.client?.waitForLocalEvaluationReady(5_000)));
      let n = 0;
      let evaluations = 0;
      let failed = 0;
      const run = async (ms: number) => {
        const end = Date.now() + ms;
        while (Date.now() < end) {
          for (const kit of kits) {
            evaluations++;
            if ((await kit.getFeatureFlag('everyone', { distinctId: `u-${n++}` })) !== true)
              failed++;
          }
          await sleep(20);
        }
      };
      await run(500);
      // 1 MB of data, then maxmemory below what Redis uses: every write is refused.
      for (let i = 0; i < 16; i++) await redis.command('SET', `filler:${i}`, 'x'.repeat(65_536));
      const used = Number((await redisInfo(redis.port, 'memory')).get('used_memory'));
      await redis.command('CONFIG', 'SET', 'maxmemory', String(used - 262_144));
      await run(5_000);
      const outage = lines.filter((l) => l.includes('is failing')).length;
      const recoveredDuring = lines.filter((l) => l.includes('answers again')).length;
      await redis.command('CONFIG', 'SET', 'maxmemory', '0');
      await run(5_000);
      const recovered = lines.filter((l) => l.includes('answers again')).length;
      figures.add({
        phase: 'Redis at maxmemory (noeviction) for 5 s, then room again',
        evaluations,
        'failed evaluations': failed,
        'outage lines': outage,
        'recovery lines during / after': `${recoveredDuring} / ${recovered}`,
      });
      expect(failed).toBe(0);
      expect(outage).toBe(kits.length);
      expect(recoveredDuring).toBe(0);
      expect(recovered).toBe(kits.length);
    } finally {
      await Promise.all(kits.map((k) => k.shutdown(2_000)));
      await redis.stop();
      await emulator.close();
    }
  },
  60_000,
);
