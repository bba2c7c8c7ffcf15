import { flag, type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  capture,
  configure,
  createPostHogKit,
  featureEnabled,
  getClient,
  getKit,
  isEnabled,
  type PostHogKit,
  PostHogKitError,
  resetKit,
  withContext,
} from '../src/index.ts';
import { kitFor, memoryLogger } from './helpers.ts';

let emulator: PostHogEmulator;
const kits: PostHogKit[] = [];
const make = (options: Parameters<typeof kitFor>[1] = {}) => {
  const kit = kitFor(emulator, options);
  kits.push(kit);
  return kit;
};

beforeAll(async () => {
  emulator = await startEmulator({
    flags: [
      flag('beta', { rollout: 100 }),
      flag('pro-only', { conditions: [{ properties: [{ key: 'plan', value: 'pro' }] }] }),
      flag('exp', { variants: { control: 0, test: 100 }, payloads: { test: { color: 'blue' } } }),
      flag('off', { active: false }),
    ],
  });
});
afterAll(async () => {
  await Promise.all(kits.map((k) => k.shutdown(1_000)));
  await emulator.close();
});
beforeEach(() => {
  emulator.reset();
});

describe('events', () => {
  it('capture takes ids and tags from the context; explicit values win', async () => {
    const kit = make();
    kit.context.withContext(
      { distinctId: 'ctx-user', sessionId: 'ctx-sess', tags: { plan: 'pro', a: 1 } },
      () => {
        kit.capture('one');
        kit.capture('two', {
          distinctId: 'explicit',
          properties: { a: 2, $session_id: 'explicit-sess' },
        });
      },
    );
    await kit.flush();
    const [one, two] = emulator.events;
    expect(one).toMatchObject({
      event: 'one',
      distinctId: 'ctx-user',
      properties: { $session_id: 'ctx-sess', plan: 'pro', a: 1 },
    });
    expect(two).toMatchObject({
      event: 'two',
      distinctId: 'explicit',
      properties: { $session_id: 'explicit-sess', plan: 'pro', a: 2 },
    });
  });

  it('without a distinct id the event is personless', async () => {
    const kit = make();
    kit.capture('anon');
    await kit.flush();
    expect(emulator.events[0]?.properties.$process_person_profile).toBe(false);
  });

  it('groups, timestamp, uuid and geoip pass through', async () => {
    const kit = make();
    const timestamp = new Date('2026-01-02T03:04:05.000Z');
    kit.capture('g', {
      distinctId: 'u',
      groups: { company: 'acme' },
      timestamp,
      uuid: '01900000-0000-7000-8000-000000000001',
    });
    await kit.flush();
    expect(emulator.events[0]).toMatchObject({
      uuid: '01900000-0000-7000-8000-000000000001',
      timestamp: '2026-01-02T03:04:05.000Z',
      properties: { $groups: { company: 'acme' }, $geoip_disable: true },
    });
  });

  it('identify, set, setOnce, alias and groupIdentify', async () => {
    const kit = make();
    kit.context.withContext({ distinctId: 'person-1' }, () => {
      kit.identify(undefined, { properties: { name: 'Ada' }, setOnce: { first_seen: 'today' } });
      kit.set({ plan: 'pro' });
      kit.setOnce({ signup: 'web' });
      kit.alias('ada@example.com');
      kit.groupIdentify('company', 'acme', { properties: { seats: 5 } });
    });
    await kit.flush();
    const byEvent = (name: string) => emulator.events.filter((e) => e.event === name);
    expect(byEvent('$identify')[0]).toMatchObject({
      distinctId: 'person-1',
      properties: { $set: { name: 'Ada' }, $set_once: { first_seen: 'today' } },
    });
    expect(byEvent('$set').map((e) => e.properties)).toEqual([
      expect.objectContaining({ $set: { plan: 'pro' } }),
      expect.objectContaining({ $set_once: { signup: 'web' } }),
    ]);
    expect(byEvent('$create_alias')[0]?.properties).toMatchObject({
      alias: 'ada@example.com',
      distinct_id: 'person-1',
    });
    expect(byEvent('$groupidentify')[0]?.properties).toMatchObject({
      $group_type: 'company',
      $group_key: 'acme',
      $group_set: { seats: 5 },
    });
  });

  it('captureException: context ids and tags, once per error object', async () => {
    const kit = make();
    const error = new TypeError('bad input');
    let uuid: string | undefined;
    kit.context.withContext({ distinctId: 'err-user', tags: { job: 'import' } }, () => {
      uuid = kit.captureException(error, { properties: { attempt: 2 } });
      expect(kit.captureException(error)).toBeUndefined();
    });
    await kit.flush();
    const events = emulator.events.filter((e) => e.event === '$exception');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      uuid,
      distinctId: 'err-user',
      properties: { job: 'import', attempt: 2 },
    });
    expect(events[0]?.properties.$exception_list).toEqual([
      expect.objectContaining({ type: 'TypeError', value: 'bad input' }),
    ]);
  });
});

describe('feature flags', () => {
  it('remote evaluation with the context distinct id, and $feature_flag_called', async () => {
    const kit = make();
    await kit.context.withContext({ distinctId: 'flag-user' }, async () => {
      expect(await kit.featureEnabled('beta')).toBe(true);
      expect(await kit.featureEnabled('off')).toBe(false);
      expect(await kit.featureEnabled('missing')).toBe(false);
      expect(await kit.getFeatureFlag('exp')).toBe('test');
      expect(await kit.getFeatureFlagPayload('exp')).toEqual({ color: 'blue' });
      expect(await kit.featureEnabled('pro-only')).toBe(false);
      expect(await kit.featureEnabled('pro-only', { personProperties: { plan: 'pro' } })).toBe(
        true,
      );
      expect(await kit.getAllFlags({ personProperties: { plan: 'pro' } })).toMatchObject({
        beta: true,
        'pro-only': true,
        exp: 'test',
      });
    });
    await kit.flush();
    const called = emulator.events.filter((e) => e.event === '$feature_flag_called');
    expect(called.every((e) => e.distinctId === 'flag-user')).toBe(true);
    expect(called.map((e) => e.properties.$feature_flag)).toContain('beta');
    expect(emulator.requests.filter((r) => r.endpoint === 'flags').length).toBeGreaterThan(0);
  });

  it('local evaluation with a personal key never asks /flags', async () => {
    const kit = make({ personalApiKey: emulator.personalApiKey });
    expect(await kit.featureEnabled('beta', { distinctId: 'local-user' })).toBe(true);
    expect(await kit.getFeatureFlag('exp', { distinctId: 'local-user' })).toBe('test');
    expect(emulator.requests.filter((r) => r.endpoint === 'flags')).toHaveLength(0);
    expect(emulator.definitionsFetchCount).toBeGreaterThanOrEqual(1);
  });

  it('no distinct id anywhere: defaults, and PostHog is not asked', async () => {
    const kit = make();
    expect(await kit.featureEnabled('beta')).toBe(false);
    expect(await kit.getFeatureFlag('beta')).toBeUndefined();
    expect(await kit.getAllFlags()).toEqual({});
    expect(emulator.requests).toHaveLength(0);
  });
});

describe('a disabled kit', () => {
  it('has no client and every call is a no-op with defaults', async () => {
    const kit = createPostHogKit({ env: {}, host: emulator.url });
    expect(kit.enabled).toBe(false);
    expect(kit.client).toBeUndefined();
    kit.capture('x', { distinctId: 'u' });
    expect(kit.captureException(new Error('x'))).toBeUndefined();
    kit.identify('u');
    expect(await kit.featureEnabled('beta', { distinctId: 'u' })).toBe(false);
    expect(await kit.getAllFlags({ distinctId: 'u' })).toEqual({});
    await kit.flush();
    await kit.shutdown();
    expect(emulator.requests).toHaveLength(0);
  });
});

describe('error modes', () => {
  it('raise: a failed flush throws PostHogKitError without the key', async () => {
    const kit = make({ errorMode: 'raise', logger: memoryLogger() });
    emulator.fault('batch', { status: 500, times: 1 });
    kit.capture('lost', { distinctId: 'u' });
    const error = await kit.flush().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PostHogKitError);
    expect((error as PostHogKitError).where).toBe('flush');
    expect((error as Error).message).not.toContain(emulator.projectApiKey);
  });

  it('log: the same failure is one line through the logger; ignore: nothing', async () => {
    const logger = memoryLogger();
    const kit = make({ errorMode: 'log', logger });
    emulator.fault('batch', { status: 500, times: 1 });
    kit.capture('lost', { distinctId: 'u' });
    await kit.flush();
    // One line for the outage (the transport's), not one more per failed flush.
    const errors = logger.lines.filter((l) => l.startsWith('error [posthog-kit]'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('HTTP 500');

    const quiet = memoryLogger();
    const ignoring = make({ errorMode: 'ignore', logger: quiet });
    emulator.fault('batch', { status: 500, times: 1 });
    ignoring.capture('lost', { distinctId: 'u' });
    await ignoring.flush();
    expect(quiet.lines).toEqual([]);
  });

  it('background errors (posthog-node timers) go through the logger in log and raise modes', async () => {
    for (const errorMode of ['log', 'raise'] as const) {
      const logger = memoryLogger();
      const kit = make({ errorMode, logger, clientOptions: { flushAt: 1, fetchRetryCount: 0 } });
      emulator.fault('batch', { status: 503, times: 1 });
      kit.capture('background', { distinctId: 'u' });
      const expected = `error [posthog-kit] PostHog batch requests to ${emulator.url} are failing (HTTP 503); events stay queued (up to maxQueueSize) and are sent when it answers again`;
      await expect.poll(() => logger.lines).toContain(expected);
      expect(logger.lines.filter((l) => l.includes('batch requests'))).toEqual([expected]);
      expect(logger.lines.join('\n')).not.toContain(emulator.projectApiKey);
    }
  });

  it('raise: a flag look-up whose request failed throws; a missing flag does not', async () => {
    const kit = make({ errorMode: 'raise', logger: memoryLogger() });
    expect(await kit.getFeatureFlag('missing', { distinctId: 'u' })).toBeUndefined();
    emulator.fault('flags', { status: 500, times: 5 });
    await expect(kit.getFeatureFlag('beta', { distinctId: 'u' })).rejects.toThrow(
      /\[posthog-kit\] flag "beta": PostHog could not be asked/,
    );
    emulator.clearFaults();
  });

  it('raise: captureImmediate that cannot be sent throws', async () => {
    const kit = make({ errorMode: 'raise', logger: memoryLogger() });
    emulator.fault('batch', { drop: true, times: 1 });
    await expect(kit.captureImmediate('now', { distinctId: 'u' })).rejects.toBeInstanceOf(
      PostHogKitError,
    );
    await kit.captureImmediate('now-ok', { distinctId: 'u' });
    expect(emulator.events.map((e) => e.event)).toContain('now-ok');
  });
});

describe('PostHog answering "try later"', () => {
  it('keeps the events queued through 5xx, 429 and dropped connections, and sends them all after', async () => {
    const kit = make({ logger: memoryLogger() });
    for (const fault of [
      { status: 503 },
      { status: 429 },
      { status: 500 },
      { drop: true as const },
    ]) {
      emulator.fault('batch', { ...fault, times: 1 });
      for (let i = 0; i < 5; i++) kit.capture('kept', { distinctId: `u${i}` });
      await kit.flush();
    }
    expect(emulator.events).toHaveLength(0);
    await kit.flush();
    expect(emulator.events.filter((e) => e.event === 'kept')).toHaveLength(20);
  });

  it('a burst of 5,000 events while PostHog is failing is kept whole (posthog-node alone keeps 1,000)', async () => {
    const kit = make({ logger: memoryLogger() });
    emulator.fault('batch', { status: 503, times: 1 });
    for (let i = 0; i < 5_000; i++) kit.capture('burst', { distinctId: `u${i % 50}` });
    await kit.flush();
    expect(emulator.events).toHaveLength(0);
    await kit.flush();
    const received = emulator.events.filter((e) => e.event === 'burst');
    expect(received).toHaveLength(5_000);
    expect(new Set(received.map((e) => e.uuid)).size).toBe(5_000);
  });

  it('a 400 (a batch PostHog will never take) is dropped, not retried forever', async () => {
    const logger = memoryLogger();
    const kit = make({ logger });
    emulator.fault('batch', { status: 400, times: 1 });
    kit.capture('rejected', { distinctId: 'u' });
    await kit.flush();
    kit.capture('next', { distinctId: 'u' });
    await kit.flush();
    expect(emulator.events.map((e) => e.event)).toEqual(['next']);
    expect(logger.lines.filter((l) => l.includes('rejected a batch (HTTP 400)'))).toHaveLength(1);
    expect(logger.lines.some((l) => l.includes('its events were dropped'))).toBe(true);
  });
});

describe('shutdown', () => {
  it('flushes what is queued', async () => {
    const kit = make();
    for (let i = 0; i < 50; i++) kit.capture('queued', { distinctId: `u${i}` });
    await kit.shutdown(2_000);
    expect(emulator.events.filter((e) => e.event === 'queued')).toHaveLength(50);
  });

  it('never hangs past its timeout when PostHog does not answer, and says so', async () => {
    const logger = memoryLogger();
    const kit = make({ logger, clientOptions: { requestTimeout: 60_000, fetchRetryCount: 0 } });
    emulator.fault('batch', { delayMs: 30_000 });
    kit.capture('stuck', { distinctId: 'u' });
    const started = Date.now();
    await kit.shutdown(300);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(logger.lines.some((l) => l.includes('shutdown failed'))).toBe(true);
    emulator.clearFaults();
  });

  it('is idempotent', async () => {
    const kit = make();
    await Promise.all([kit.shutdown(500), kit.shutdown(500)]);
    await kit.shutdown(500);
  });
});

describe('startup validation', () => {
  it('passes with the right keys and host', async () => {
    const logger = memoryLogger();
    const kit = make({
      validateOnStartup: true,
      personalApiKey: emulator.personalApiKey,
      logger,
      errorMode: 'raise',
    });
    await kit.ready;
    expect(emulator.events.map((e) => e.event)).toContain('posthog_kit_validation');
    expect(emulator.definitionsFetchCount).toBeGreaterThanOrEqual(1);
    expect(logger.lines).toEqual([]);
  });

  it('names the wrong project key, personal key or host, and never prints them', async () => {
    const cases = [
      { options: { apiKey: 'phc_wrongwrongwrong' }, says: 'POSTHOG_PROJECT_API_KEY: rejected by' },
      {
        options: { personalApiKey: 'phx_wrongwrongwrong' },
        says: 'POSTHOG_PERSONAL_API_KEY: rejected by',
      },
      {
        options: { host: 'http://127.0.0.1:9' },
        says: 'POSTHOG_HOST: could not reach http://127.0.0.1:9',
      },
    ];
    for (const { options, says } of cases) {
      const kit = make({
        errorMode: 'raise',
        validateOnStartup: true,
        logger: memoryLogger(),
        ...options,
      });
      const error = await kit.ready.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PostHogKitError);
      expect((error as Error).message).toContain(says);
      expect((error as Error).message).not.toMatch(/ph[cx]_wrong/);

      const logger = memoryLogger();
      const logging = make({ errorMode: 'log', logger, ...options });
      await logging.validate();
      expect(logger.lines.some((l) => l.includes(says))).toBe(true);
      expect(logger.lines.join('\n')).not.toMatch(/ph[cx]_wrong/);
    }
  });
});

describe('the default kit', () => {
  it('is created from the environment on first use; configure replaces it', async () => {
    await resetKit();
    const saved = { ...process.env };
    try {
      process.env.POSTHOG_PROJECT_API_KEY = emulator.projectApiKey;
      process.env.POSTHOG_HOST = emulator.url;
      expect(isEnabled()).toBe(true);
      expect(getClient()).toBe(getKit().client);
      await withContext({ distinctId: 'sugar-user' }, async () => {
        capture('from-sugar');
        expect(await featureEnabled('beta')).toBe(true);
      });
      await getKit().flush();
      expect(emulator.events.find((e) => e.event === 'from-sugar')?.distinctId).toBe('sugar-user');
      const first = getKit();
      const second = configure({ env: {} });
      expect(second).not.toBe(first);
      expect(isEnabled()).toBe(false);
    } finally {
      process.env = saved;
      await resetKit(1_000);
    }
  });
});

describe('a kit disabled by a misspelled variable', () => {
  it('says once that it is disabled, naming the variables it does not read', () => {
    const logger = memoryLogger();
    const a = createPostHogKit({
      env: { POSTHOG_KEY: 'phc_typo', POSTHOG_HOST: 'https://eu.i.posthog.com' },
      logger,
    });
    const b = createPostHogKit({ env: { POSTHOG_KEY: 'phc_typo' }, logger });
    expect(a.enabled).toBe(false);
    expect(b.enabled).toBe(false);
    const lines = logger.lines.filter((l) => l.includes('the kit is disabled'));
    expect(lines).toEqual([
      'warn [posthog-kit] the kit is disabled: no project key (POSTHOG_PROJECT_API_KEY or POSTHOG_API_KEY) is set, though POSTHOG_KEY is set (a name the kit does not read)',
    ]);
    expect(lines.join('')).not.toContain('phc_typo');
  });
});
