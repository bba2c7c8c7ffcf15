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

const lines = (logger: ReturnType<typeof memoryLogger>) =>
  logger.lines.filter((l) => !l.startsWith('debug'));

describe('logs a user can live with', () => {
  it.each([
    ['without a personal key', undefined],
    ['with a personal key', 'phx_test_emulator'],
  ])(
    'a wrong project key, %s: one line, naming the project key, saying what happens',
    async (_n, personal) => {
      const logger = memoryLogger();
      const kit = kitFor(emulator, {
        logger,
        apiKey: 'phc_wrong_project_key',
        personalApiKey: personal,
      });
      kits.push(kit);
      kit.capture('lost', { distinctId: 'u' });
      expect(await kit.getFeatureFlag('beta', { distinctId: 'u' })).toBeUndefined();
      await kit.flush();
      await kit.flush();
      expect(lines(logger)).toEqual([
        expect.stringContaining('POSTHOG_PROJECT_API_KEY: rejected by http://127.0.0.1:'),
      ]);
      expect(lines(logger)[0]).toContain('batches PostHog refuses are dropped');
      expect(lines(logger)[0]).not.toContain('phc_wrong');
    },
  );

  it('anonymous flag look-ups: said once, with what to do, not once per call', async () => {
    const logger = memoryLogger();
    const kit = kitFor(emulator, { logger });
    kits.push(kit);
    for (let i = 0; i < 10; i++) expect(await kit.featureEnabled('beta')).toBe(false);
    const said = logger.lines.filter((l) => l.includes('no distinct id'));
    expect(said).toHaveLength(1);
    expect(said[0]).toContain('X-POSTHOG-DISTINCT-ID');
  });
});
