// Keys stay secret: the personal key travels only in the Authorization header of the
// definitions request, and no key shows up in a log line, an error or an event, in any
// error mode, whatever PostHog answers.
import { gunzipSync } from 'node:zlib';
import { flag, type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPostHogKit, type ErrorMode, RequestTracker } from '../src/index.ts';
import { memoryLogger } from './helpers.ts';

const PROJECT_KEY = 'phc_SecretProjectKey0123456789';
const PERSONAL_KEY = 'phx_SecretPersonalKey9876543210';

let emulator: PostHogEmulator;
beforeAll(async () => {
  emulator = await startEmulator({
    projectApiKey: PROJECT_KEY,
    personalApiKey: PERSONAL_KEY,
    flags: [
      flag('beta', { rollout: 100 }),
      // Experience continuity cannot be evaluated locally: posthog-node asks /flags.
      flag('continuity', { rollout: 100, ensureExperienceContinuity: true }),
    ],
  });
});
afterAll(() => emulator.close());

interface Sent {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** A fetch that records exactly what leaves the process. */
function recordingFetch(sent: Sent[]): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    const bytes = Buffer.from(await request.clone().arrayBuffer());
    const body =
      request.headers.get('content-encoding') === 'gzip'
        ? gunzipSync(bytes).toString()
        : bytes.toString();
    sent.push({ url: request.url, headers: Object.fromEntries(request.headers), body });
    return fetch(input, init);
  };
}

describe('the personal key', () => {
  it('goes only in the Authorization header of the definitions request', async () => {
    const sent: Sent[] = [];
    const kit = createPostHogKit({
      env: {},
      apiKey: PROJECT_KEY,
      personalApiKey: PERSONAL_KEY,
      host: emulator.url,
      fetch: recordingFetch(sent),
      validateOnStartup: true,
    });
    await kit.ready;
    expect(await kit.featureEnabled('beta', { distinctId: 'u' })).toBe(true);
    await kit.getFeatureFlag('continuity', { distinctId: 'u' }); // remote fallback
    kit.capture('x', { distinctId: 'u' });
    kit.captureException(new Error('boom'), { distinctId: 'u' });
    await kit.shutdown(2_000);

    expect(sent.some((r) => r.url.includes('/flags/definitions'))).toBe(true);
    expect(sent.some((r) => r.url.includes('/flags/?'))).toBe(true);
    expect(sent.some((r) => r.url.includes('/batch/'))).toBe(true);
    for (const request of sent) {
      const definitions = new URL(request.url).pathname === '/flags/definitions';
      expect(request.url).not.toContain(PERSONAL_KEY);
      expect(request.body).not.toContain(PERSONAL_KEY);
      for (const [name, value] of Object.entries(request.headers)) {
        if (definitions && name === 'authorization') expect(value).toBe(`Bearer ${PERSONAL_KEY}`);
        else expect(value).not.toContain(PERSONAL_KEY);
      }
    }
  });
});

describe('no key in logs, errors or events', () => {
  it.each<ErrorMode>(['log', 'raise', 'ignore'])(
    'error mode %s, with PostHog refusing and failing',
    async (errorMode) => {
      emulator.reset();
      const logger = memoryLogger();
      const printed: string[] = [];
      const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((level) =>
        vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
          printed.push(
            args.map((a) => (a instanceof Error ? `${a.message} ${a.stack}` : String(a))).join(' '),
          );
        }),
      );
      const errors: string[] = [];
      const attempt = async (fn: () => unknown) => {
        try {
          await fn();
        } catch (error) {
          errors.push(`${(error as Error).message} ${(error as Error).stack}`);
        }
      };
      try {
        emulator.fault('definitions', { status: 401, times: 2 });
        emulator.fault('flags', { status: 500, times: 2 });
        emulator.fault('batch', { status: 503, times: 2 });
        const kit = createPostHogKit({
          env: {},
          apiKey: PROJECT_KEY,
          personalApiKey: PERSONAL_KEY,
          host: emulator.url,
          errorMode,
          logger,
          debug: true,
          validateOnStartup: true,
          clientOptions: { fetchRetryCount: 0 },
        });
        await attempt(() => kit.ready);
        await attempt(() => kit.validate());
        const tracker = new RequestTracker({ kit });
        const scope = tracker.start({
          method: 'GET',
          url: `http://app.test/?token=${PROJECT_KEY}`,
          path: '/',
          ip: '127.0.0.1',
          raw: undefined,
          header: (name) => (name === 'authorization' ? `Bearer ${PERSONAL_KEY}` : undefined),
        });
        await attempt(() =>
          tracker.run(scope, () => kit.getFeatureFlag('beta', { distinctId: 'u' })),
        );
        tracker.captureError(scope, new Error('request failed'));
        kit.capture('evt', { distinctId: 'u' });
        await attempt(() => kit.captureImmediate('now', { distinctId: 'u' }));
        await attempt(() => kit.flush());
        await attempt(() => kit.flush());
        await attempt(() => kit.shutdown(2_000));
        // A bad setting's error does not show the key either.
        await attempt(() =>
          createPostHogKit({ env: { POSTHOG_PERSONAL_API_KEY: PROJECT_KEY }, errorMode }),
        );
      } finally {
        for (const spy of spies) spy.mockRestore();
      }
      const everything = [
        ...logger.lines,
        ...printed,
        ...errors,
        JSON.stringify(emulator.events.map((e) => e.properties)),
      ];
      expect(everything.length).toBeGreaterThan(0);
      for (const text of everything) {
        expect(text).not.toContain(PROJECT_KEY);
        expect(text).not.toContain(PERSONAL_KEY);
      }
      if (errorMode !== 'ignore') expect(logger.lines.length + errors.length).toBeGreaterThan(0);
    },
  );
});
