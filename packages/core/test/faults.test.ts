// PostHog refusing or failing: one clear message per outage through the error mode,
// flags fall back, nothing thrown at the caller, and a line when PostHog is back.
import { flag, type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PostHogKit } from '../src/index.ts';
import { kitFor, memoryLogger } from './helpers.ts';

let emulator: PostHogEmulator;
const kits: PostHogKit[] = [];
beforeAll(async () => {
  emulator = await startEmulator({ flags: [flag('beta', { rollout: 100 })] });
});
afterAll(async () => {
  await Promise.all(kits.map((k) => k.shutdown(500)));
  await emulator.close();
});
beforeEach(() => {
  emulator.reset();
});

const make = (options: Parameters<typeof kitFor>[1]) => {
  const kit = kitFor(emulator, options);
  kits.push(kit);
  return kit;
};

describe('PostHog refusing the keys', () => {
  it('401 on definitions: one message however often the poller tries; flags still answer', async () => {
    const logger = memoryLogger();
    emulator.fault('definitions', { status: 401 });
    const kit = make({ logger, personalApiKey: emulator.personalApiKey, pollIntervalMs: 100 });
    await expect
      .poll(() => emulator.definitionsFetchCount, { timeout: 3_000 })
      .toBeGreaterThanOrEqual(2);
    // Falls back to remote evaluation with the (valid) project key.
    expect(await kit.featureEnabled('beta', { distinctId: 'u' })).toBe(true);
    const lines = logger.lines.filter((l) => l.includes('POSTHOG_PERSONAL_API_KEY'));
    expect(lines).toEqual([
      `error [posthog-kit] POSTHOG_PERSONAL_API_KEY: rejected by ${emulator.url} (HTTP 401) (it needs feature flag read access); local evaluation keeps the definitions it has (or asks /flags) until it answers again`,
    ]);
    expect(logger.lines.join('\n')).not.toMatch(/ph[cx]_test_emulator/);
    emulator.clearFaults();
  });

  it('402 on definitions: one message, and with /flags refused too the flags answer their defaults', async () => {
    const logger = memoryLogger();
    emulator.fault('definitions', { status: 402 });
    emulator.fault('flags', { status: 402 });
    const kit = make({ logger, personalApiKey: emulator.personalApiKey, errorMode: 'log' });
    expect(await kit.featureEnabled('beta', { distinctId: 'u' })).toBe(false);
    expect(await kit.getFeatureFlag('beta', { distinctId: 'u' })).toBeUndefined();
    expect(
      logger.lines.filter((l) => l.includes('HTTP 402, the feature flag quota is exceeded')),
    ).toHaveLength(1);
    emulator.clearFaults();
  });

  it('401 on batches: one message naming the project key, and the request path is not touched', async () => {
    const logger = memoryLogger();
    emulator.fault('batch', { status: 401 });
    const kit = make({ logger });
    for (let i = 0; i < 3; i++) {
      kit.capture('refused', { distinctId: 'u' });
      await kit.flush();
    }
    expect(
      logger.lines.filter((l) => l.includes('POSTHOG_PROJECT_API_KEY: rejected by')),
    ).toHaveLength(1);
    emulator.clearFaults();
  });
});

describe('PostHog failing', () => {
  it('a /flags outage: one message, defaults, then a line when it works again', async () => {
    const logger = memoryLogger();
    const kit = make({ logger });
    emulator.fault('flags', { status: 503 });
    for (let i = 0; i < 5; i++)
      expect(await kit.featureEnabled('beta', { distinctId: `u${i}` })).toBe(false);
    expect(
      logger.lines.filter((l) => l.includes('flags requests') && l.includes('are failing')),
    ).toHaveLength(1);
    emulator.clearFaults();
    expect(await kit.featureEnabled('beta', { distinctId: 'back' })).toBe(true);
    expect(
      logger.lines.filter((l) => l.includes('flags requests') && l.includes('work again')),
    ).toHaveLength(1);
  });

  it('a batch outage keeps the events and reports it once; recovery sends them all', async () => {
    const logger = memoryLogger();
    const kit = make({ logger, clientOptions: { fetchRetryCount: 1, fetchRetryDelay: 10 } });
    emulator.fault('batch', { drop: true, times: 6 });
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 10; i++) kit.capture('outage', { distinctId: `u${i}` });
      await kit.flush();
    }
    expect(emulator.events).toHaveLength(0);
    await kit.flush();
    expect(emulator.events.filter((e) => e.event === 'outage')).toHaveLength(30);
    expect(
      logger.lines.filter((l) => l.includes('batch requests') && l.includes('are failing')),
    ).toHaveLength(1);
    expect(
      logger.lines.filter((l) => l.includes('batch requests') && l.includes('work again')),
    ).toHaveLength(1);
  });
});
