import { Controller, Get, Injectable, Module } from '@nestjs/common';
import {
  Cron,
  CronExpression,
  Interval,
  ScheduleModule,
  SchedulerRegistry,
  Timeout,
} from '@nestjs/schedule';
import { type PostHogEmulator, type RecordedEvent, startEmulator } from '@posthog-kit/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { capture, PostHogJob, PostHogKit, PostHogModule, resetKit } from '../src/index.ts';
import { exceptionValue, listen, platforms } from './helpers.ts';

let emulator: PostHogEmulator;

beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(() => emulator.close());
beforeEach(() => {
  emulator.reset();
  return () => resetKit(1_000);
});

/** A provider with scheduled jobs: the kit injected, the sugar too. */
@Injectable()
class Jobs {
  readonly kit: PostHogKit;
  constructor(kit: PostHogKit) {
    this.kit = kit;
  }

  /** Each job captures once, so a slow machine cannot change what the test counts. */
  readonly done = new Set<string>();

  // Above or below @Interval(): the same.
  @PostHogJob()
  @Interval(20)
  tick() {
    if (this.#first('tick')) capture('interval_tick');
  }

  @Interval(20)
  @PostHogJob({ name: 'billing', distinctId: 'system', tags: { team: 'growth' } })
  billing() {
    if (this.#first('billing')) this.kit.capture('invoice_sent');
  }

  @Cron(CronExpression.EVERY_SECOND)
  @PostHogJob('cleanup')
  cleanup() {
    if (this.#first('cleanup')) capture('cleanup_ran');
  }

  @Timeout(10)
  @PostHogJob('failing')
  async failing() {
    await new Promise((resolve) => setTimeout(resolve, 1));
    throw new Error('the job failed');
  }

  /** Started from a request (below): decorated, it has a context of its own. */
  @PostHogJob('report')
  report() {
    capture('report_sent');
  }

  /** The same, undecorated: the timer kept the context of the request that created it. */
  leaky() {
    capture('leaky_tick');
  }

  #first(name: string): boolean {
    if (this.done.has(name)) return false;
    this.done.add(name);
    return true;
  }
}

@Controller()
class ScheduleController {
  readonly jobs: Jobs;
  readonly registry: SchedulerRegistry;
  constructor(jobs: Jobs, registry: SchedulerRegistry) {
    this.jobs = jobs;
    this.registry = registry;
  }

  // A job added while a request runs: its timer is created in the request's context.
  @Get('schedule')
  schedule() {
    capture('scheduled');
    const timer = setTimeout(() => {
      this.jobs.report();
      this.jobs.leaky();
    }, 10);
    this.registry.addTimeout('report', timer);
    return { ok: true };
  }
}

const byName = (all: readonly RecordedEvent[], name: string) => all.find((e) => e.event === name);

describe.each(platforms)('Nest on $name', (platform) => {
  it('@nestjs/schedule jobs run in their own context, never in a request that started them', async () => {
    @Module({
      imports: [
        ScheduleModule.forRoot(),
        PostHogModule.forRoot({
          env: {},
          apiKey: emulator.projectApiKey,
          host: emulator.url,
          shutdownHooks: false,
        }),
      ],
      controllers: [ScheduleController],
      providers: [Jobs],
    })
    class AppModule {}
    const { app, url } = await listen(AppModule, platform);
    try {
      await fetch(`${url}/schedule`, { headers: { 'x-posthog-distinct-id': 'req-user' } });
      const names = [
        'interval_tick',
        'invoice_sent',
        'cleanup_ran',
        'report_sent',
        'leaky_tick',
        '$exception',
      ];
      const deadline = Date.now() + 3_000;
      while (names.some((n) => !emulator.events.some((e) => e.event === n))) {
        if (Date.now() > deadline) break;
        await app.get(PostHogKit).flush();
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const all = emulator.events;
      expect(byName(all, 'interval_tick')?.properties.job).toBe('Jobs.tick');
      expect(byName(all, 'invoice_sent')).toMatchObject({
        distinctId: 'system',
        properties: { job: 'billing', team: 'growth' },
      });
      expect(byName(all, 'cleanup_ran')?.properties.job).toBe('cleanup');
      // Started inside the request, decorated: the job's context, nothing of the request.
      const report = byName(all, 'report_sent');
      expect(report?.properties.job).toBe('report');
      expect(report?.distinctId).not.toBe('req-user');
      expect(report?.properties.$request_path).toBeUndefined();
      // Undecorated, the timer's inherited context is the request's: what the decorator prevents.
      expect(byName(all, 'leaky_tick')).toMatchObject({
        distinctId: 'req-user',
        properties: { $request_path: '/schedule' },
      });
      // A job's error: captured once, with the job's context; the scheduler still logs it.
      const exceptions = all.filter((e) => e.event === '$exception');
      expect(exceptions.map(exceptionValue)).toEqual(['the job failed']);
      expect(exceptions[0]?.properties.job).toBe('failing');
    } finally {
      await app.close();
    }
  });
});
