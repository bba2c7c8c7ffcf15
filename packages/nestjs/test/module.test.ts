import { Controller, Get, Injectable, Module } from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  capture,
  getKit,
  PostHog,
  type PostHogHandle,
  PostHogKit,
  PostHogModule,
  resetKit,
} from '../src/index.ts';
import { emulatorKit, listen, platforms } from './helpers.ts';

let emulator: PostHogEmulator;

beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(() => emulator.close());
beforeEach(() => emulator.reset());
afterEach(() => resetKit(1_000));

/** What the app's configuration holds (a .env file, say). */
const configValues: Record<string, string> = {};

/** A stand-in for @nestjs/config's ConfigService: values by key, injected into the factory. */
@Injectable()
class ConfigService {
  get(key: string): string | undefined {
    return configValues[key];
  }
}

@Module({ providers: [ConfigService], exports: [ConfigService] })
class ConfigModule {}

/** A worker-style service: the kit by injection (by type), no request. */
@Injectable()
class Reporter {
  readonly kit: PostHogKit;
  constructor(kit: PostHogKit) {
    this.kit = kit;
  }
  report(): void {
    this.kit.capture('report_sent', { distinctId: 'worker' });
    capture('report_sugar', { distinctId: 'worker' });
  }
}

@Controller()
class PingController {
  @Get('ping')
  ping(@PostHog() posthog: PostHogHandle) {
    posthog.capture('pinged');
    return { pong: true };
  }
}

const settings = () => ({
  env: {},
  apiKey: emulator.projectApiKey,
  host: emulator.url,
  shutdownHooks: false,
  clientOptions: { flushAt: 10_000, flushInterval: 60_000 },
});

describe.each(platforms)('Nest on $name', (platform) => {
  it('forRootAsync, the ConfigService way; the kit injectable; closing the app sends what it queued', async () => {
    @Module({
      imports: [
        PostHogModule.forRootAsync({
          imports: [ConfigModule],
          inject: [ConfigService],
          useFactory: (config: ConfigService) => ({
            ...settings(),
            apiKey: config.get('POSTHOG_KEY'),
            captureViews: config.get('VIEWS') === 'on',
          }),
        }),
      ],
      controllers: [PingController],
      providers: [Reporter],
    })
    class AppModule {}
    configValues.POSTHOG_KEY = emulator.projectApiKey;
    configValues.VIEWS = 'on';
    const { app, url } = await listen(AppModule, platform);
    const kit = app.get(PostHogKit);
    // Settings make the default kit: the sugar outside a request reports to it.
    expect(getKit()).toBe(kit);
    app.get(Reporter).report();
    await fetch(`${url}/ping`, { headers: { 'x-posthog-distinct-id': 'pinger' } });
    // Nothing sent yet (flushAt 10,000): closing the app sends it.
    expect(emulator.events).toEqual([]);
    await app.close();
    expect(emulator.events.map((e) => [e.event, e.distinctId]).sort()).toEqual([
      ['$pageview', 'pinger'],
      ['pinged', 'pinger'],
      ['report_sent', 'worker'],
      ['report_sugar', 'worker'],
    ]);
    // Flushed, not shut down: the default kit is the sugar's too, and shuts itself down at exit.
    expect(kit.isShutdown).toBe(false);
    expect(getKit()).toBe(kit);
  });

  it('a kit you pass is flushed at close and stays yours', async () => {
    const kit = emulatorKit(emulator);
    @Module({ imports: [PostHogModule.forRoot({ kit })], controllers: [PingController] })
    class AppModule {}
    const { app, url } = await listen(AppModule, platform);
    await fetch(`${url}/ping`, { headers: { 'x-posthog-distinct-id': 'mine' } });
    await app.close();
    expect(emulator.events.map((e) => e.event)).toEqual(['pinged']);
    expect(kit.isShutdown).toBe(false);
    kit.capture('after_close', { distinctId: 'mine' });
    await kit.shutdown(1_000);
    expect(emulator.events.map((e) => e.event)).toEqual(['pinged', 'after_close']);
  });

  it('closeTimeoutMs: 0: closing the app does not wait for the kit', async () => {
    const kit = emulatorKit(emulator);
    @Module({
      imports: [PostHogModule.forRoot({ kit, closeTimeoutMs: 0 })],
      controllers: [PingController],
    })
    class AppModule {}
    const { app, url } = await listen(AppModule, platform);
    await fetch(`${url}/ping`, { headers: { 'x-posthog-distinct-id': 'mine' } });
    await app.close();
    expect(emulator.events).toEqual([]);
    await kit.shutdown(1_000);
    expect(emulator.events.map((e) => e.event)).toEqual(['pinged']);
  });
});

it('@nestjs/testing: a testing module, its app on Fastify over a real socket', async () => {
  const kit = emulatorKit(emulator);
  const moduleRef = await Test.createTestingModule({
    imports: [PostHogModule.forRoot({ kit })],
    controllers: [PingController],
    providers: [Reporter],
  }).compile();
  const app = moduleRef.createNestApplication(new FastifyAdapter(), { logger: false });
  await app.listen(0, '127.0.0.1');
  try {
    expect(moduleRef.get(PostHogKit)).toBe(kit);
    moduleRef.get(Reporter).report();
    const res = await fetch(`${await app.getUrl()}/ping`, {
      headers: { 'x-posthog-distinct-id': 'tester' },
    });
    expect(await res.json()).toEqual({ pong: true });
    await kit.flush();
    // The sugar outside a request is the default kit's (none here: it sends nothing).
    expect(emulator.events.map((e) => [e.event, e.distinctId]).sort()).toEqual([
      ['pinged', 'tester'],
      ['report_sent', 'worker'],
    ]);
  } finally {
    await app.close();
    await kit.shutdown(1_000);
  }
});

it("@nestjs/testing: overrideProvider(PostHogKit) is the kit the app's requests report to", async () => {
  const kit = emulatorKit(emulator);
  // The app module as it ships: settings of its own.
  @Module({
    imports: [PostHogModule.forRoot(settings())],
    controllers: [PingController],
    providers: [Reporter],
  })
  class ShippedModule {}
  const moduleRef = await Test.createTestingModule({ imports: [ShippedModule] })
    .overrideProvider(PostHogKit)
    .useValue(kit)
    .compile();
  const made = getKit();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  await fetch(`${await app.getUrl()}/ping`, { headers: { 'x-posthog-distinct-id': 'tester' } });
  moduleRef.get(Reporter).report();
  await app.close();
  // Closing flushed the override and the kit the settings made (the default kit: the
  // sugar outside a request reported to it).
  expect(emulator.events.map((e) => [e.event, e.distinctId]).sort()).toEqual([
    ['pinged', 'tester'],
    ['report_sent', 'worker'],
    ['report_sugar', 'worker'],
  ]);
  expect(kit.isShutdown).toBe(false);
  expect(made.isShutdown).toBe(false);
  await kit.shutdown(1_000);
});

it('two modules with different kit settings: an error that says what to do', async () => {
  @Module({ imports: [PostHogModule.forRoot(settings())] })
  class First {}
  @Module({ imports: [PostHogModule.forRoot({ ...settings(), host: 'http://127.0.0.1:9' })] })
  class Second {}
  @Module({ imports: [First, Second] })
  class AppModule {}
  await expect(Test.createTestingModule({ imports: [AppModule] }).compile()).rejects.toThrow(
    /PostHogModule: host differ .* createPostHogKit\(\) and pass \{ kit \}/,
  );
});
