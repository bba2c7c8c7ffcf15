// Property-based tests: whatever comes in, nothing throws into a request and settings
// errors stay clear.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createPostHogKit,
  ENV_VARS,
  PostHogKitError,
  parseSettings,
  type RequestInfo,
  RequestTracker,
  sanitizeHeaderId,
} from '../src/index.ts';
import { memoryLogger } from './helpers.ts';

const SECRET = 'phc_propertysecret123456';
const PERSONAL = 'phx_propertysecret654321';

describe('settings parsing', () => {
  it('any environment either parses or fails with one clear PostHogKitError, never leaking keys', () => {
    const envValue = fc.oneof(
      fc.string(),
      fc.constantFrom(
        'true',
        'false',
        '0',
        '1',
        'yes',
        '-1',
        '3.5',
        'NaN',
        '[1]',
        '["a"]',
        'http://x',
        'ftp:/x',
      ),
    );
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...ENV_VARS), envValue), (env) => {
        const withKeys = {
          ...env,
          POSTHOG_PROJECT_API_KEY: SECRET,
          POSTHOG_PERSONAL_API_KEY: PERSONAL,
        };
        try {
          const settings = parseSettings({ env: withKeys });
          expect(settings.apiKey).toBe(SECRET);
        } catch (error) {
          expect(error).toBeInstanceOf(PostHogKitError);
          const message = (error as Error).message;
          expect(message.startsWith('[posthog-kit] ')).toBe(true);
          expect(message).toMatch(/POSTHOG_[A-Z_]+: expected /);
          expect(message).not.toContain(SECRET);
          expect(message).not.toContain(PERSONAL);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('any code options either parse or fail with a PostHogKitError', () => {
    fc.assert(
      fc.property(
        fc.record(
          {
            host: fc.anything(),
            pollIntervalMs: fc.anything(),
            errorMode: fc.anything(),
            captureViews: fc.anything(),
            codeVariablesMaskPatterns: fc.anything(),
            extraTags: fc.anything(),
          },
          { requiredKeys: [] },
        ),
        (options) => {
          try {
            parseSettings({ env: {}, ...(options as object) });
          } catch (error) {
            expect(error).toBeInstanceOf(PostHogKitError);
            expect((error as Error).message).toMatch(/^\[posthog-kit\] /);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('tracing header sanitising', () => {
  it('is bounded, free of control characters, trimmed and idempotent', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 3000 }),
          // A space right at the cut, the case plain strings rarely hit.
          fc
            .tuple(fc.string({ minLength: 999, maxLength: 999 }), fc.string())
            .map(([a, b]) => `x${a.slice(1)} ${b}`),
        ),
        (raw) => {
          const out = sanitizeHeaderId(raw);
          if (out === undefined) return;
          expect(out.length).toBeGreaterThan(0);
          expect(out.length).toBeLessThanOrEqual(1000);
          expect(
            [...out].some(
              (c) => c.charCodeAt(0) < 0x20 || (c.charCodeAt(0) >= 0x7f && c.charCodeAt(0) <= 0x9f),
            ),
          ).toBe(false);
          expect(out).toBe(out.trim());
          expect(sanitizeHeaderId(out)).toBe(out);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('user hooks returning anything', () => {
  it('extraTags, tagMap and resolveUser results never throw into the request', () => {
    const kit = createPostHogKit({
      env: {},
      apiKey: 'phc_x',
      host: 'http://127.0.0.1:9',
      logger: memoryLogger(),
    });
    fc.assert(
      fc.property(
        fc.anything(),
        fc.anything(),
        fc.anything(),
        fc.dictionary(fc.string(), fc.string()),
        (extra, mapped, user, headers) => {
          const tracker = new RequestTracker({
            kit,
            extraTags: () => extra as Record<string, unknown>,
            tagMap: () => mapped as Record<string, unknown>,
            resolveUser: () => user as { id?: string },
          });
          const info: RequestInfo = {
            method: 'GET',
            url: 'http://app.test/x',
            path: '/x',
            ip: undefined,
            raw: undefined,
            header: (name) => headers[name],
          };
          const scope = tracker.start(info);
          expect(scope.tracked).toBe(true);
          const tags = scope.posthog.tags;
          expect(typeof tags).toBe('object');
          const id = scope.posthog.distinctId;
          expect(id === undefined || typeof id === 'string').toBe(true);
          tracker.run(scope, () => scope.posthog.capture('property_event'));
          tracker.captureError(scope, extra);
          tracker.end(scope, 200);
        },
      ),
      { numRuns: 300 },
    );
    void kit.shutdown(100);
  });
});
