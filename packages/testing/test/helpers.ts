import { gzipSync } from 'node:zlib';
import type { PostHogEmulator } from '@posthog-kit/testing';
import { PostHog, type PostHogOptions } from 'posthog-node';

const clients: PostHog[] = [];

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
