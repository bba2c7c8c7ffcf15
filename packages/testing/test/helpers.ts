import { gzipSync } from 'node:zlib';
import type { PostHogEmulator } from '@posthog-kit/testing';
import {
  type AllFlagsOptions,
  type FeatureFlagEvaluations,
  PostHog,
  type PostHogOptions,
} from 'posthog-node';
import { afterAll, expect } from 'vitest';

const clients: PostHog[] = [];

// posthog-node warns once per deprecated method (console.warn "[PostHog] `x` is deprecated");
// the emulator's tests, like its README, use none of them.
const deprecations: string[] = [];
const warn = console.warn;
console.warn = (...args: unknown[]) => {
  if (/^\[PostHog\].*deprecated/.test(String(args[0]))) deprecations.push(String(args[0]));
  warn(...args);
};
afterAll(() => {
  expect(deprecations, 'deprecated posthog-node calls').toEqual([]);
});

/** A posthog-node client on the emulator that sends every event at once and retries fast. */
export function clientFor(
  emulator: Pick<PostHogEmulator, 'url' | 'projectApiKey'>,
  options: PostHogOptions = {},
): PostHog {
  const client = new PostHog(emulator.projectApiKey, {
    host: emulator.url,
    flushAt: 1,
    flushInterval: 0,
    fetchRetryDelay: 10,
    ...options,
  });
  client.on('error', () => {});
  clients.push(client);
  return client;
}

/** Shuts down every client made by `clientFor`, for afterEach. */
export async function shutdownClients(): Promise<void> {
  await Promise.all(clients.splice(0).map((c) => c.shutdown(1000)));
}

/** POSTs JSON (optionally gzipped, with or without the header) with plain fetch. */
export function post(
  url: string,
  body: unknown,
  options: { gzip?: boolean; header?: boolean; raw?: string } = {},
): Promise<Response> {
  const text = options.raw ?? JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.gzip && options.header !== false) headers['content-encoding'] = 'gzip';
  return fetch(url, {
    method: 'POST',
    headers,
    body: options.gzip ? gzipSync(text) : text,
  });
}

type ReadOptions = AllFlagsOptions & { sendFeatureFlagEvents?: boolean };

/** One flag through posthog-node's snapshot API (its per-flag getters are deprecated). */
export async function readFlag(
  client: PostHog,
  key: string,
  distinctId: string,
  { sendFeatureFlagEvents, ...options }: ReadOptions = {},
): Promise<ReturnType<FeatureFlagEvaluations['getFlag']>> {
  const flags = await client.evaluateFlags(distinctId, { ...options, flagKeys: [key] });
  return flags.getFlag(key, { sendFeatureFlagEvents });
}

/** One flag's payload through the snapshot API; reads no value, so sends no event. */
export async function readPayload(
  client: PostHog,
  key: string,
  distinctId: string,
  options: AllFlagsOptions = {},
): Promise<unknown> {
  const flags = await client.evaluateFlags(distinctId, { ...options, flagKeys: [key] });
  return flags.getFlagPayload(key);
}
