// Whatever arrives, the emulator answers (2xx or 4xx) and keeps serving.
import { gzipSync } from 'node:zlib';
import { type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';

let emulator: PostHogEmulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(() => emulator.close());

const body = fc.oneof(
  fc.string(),
  fc.json(),
  fc.jsonValue().map((v) => JSON.stringify({ api_key: 'phc_test_emulator', batch: v })),
  fc
    .jsonValue()
    .map((v) =>
      JSON.stringify({ token: 'phc_test_emulator', distinct_id: v, person_properties: v }),
    ),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
);

it('any body to /batch/ or /flags/, plain or gzip, gets an answer and never a crash', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('/batch/', '/flags/?v=2', '/e/'),
      body,
      fc.boolean(),
      async (path, text, gzip) => {
        const res = await fetch(`${emulator.url}${path}`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(gzip && { 'content-encoding': 'gzip' }),
          },
          body: gzip ? gzipSync(text) : text,
        });
        expect(res.status).toBeGreaterThanOrEqual(200);
        expect(res.status).toBeLessThan(500);
        await res.arrayBuffer();
      },
    ),
    { numRuns: 300 },
  );
  const health = await fetch(`${emulator.url}/flags/?v=2`, {
    method: 'POST',
    body: JSON.stringify({ token: 'phc_test_emulator', distinct_id: 'still-alive' }),
  });
  expect(health.status).toBe(200);
});
