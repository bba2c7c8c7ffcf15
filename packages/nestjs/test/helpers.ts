// What the Nest tests share: both platforms, a quiet app on a free loopback port, a kit on
// the emulator that only sends when asked.
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { createPostHogKit, type PostHogKit, type PostHogKitOptions } from '@posthog-kit/core';
import type { PostHogEmulator, RecordedEvent } from '@posthog-kit/testing';

export interface Platform {
  name: 'Express' | 'Fastify';
  adapter(): ExpressAdapter | FastifyAdapter;
}

export const platforms: Platform[] = [
  { name: 'Express', adapter: () => new ExpressAdapter() },
  { name: 'Fastify', adapter: () => new FastifyAdapter() },
];

/** An app of `module` on the platform, listening on loopback; Nest's logger off. */
export async function listen(
  module: object,
  platform: Platform,
  setup?: (app: INestApplication) => void,
): Promise<{ app: INestApplication; url: string }> {
  const app = await NestFactory.create(module as never, platform.adapter(), { logger: false });
  setup?.(app);
  await app.listen(0, '127.0.0.1');
  return { app, url: (await app.getUrl()).replace('[::1]', '127.0.0.1') };
}

/** A kit on the emulator that never sends by itself: a test flushes when it reads. */
export function emulatorKit(
  emulator: PostHogEmulator,
  options: PostHogKitOptions = {},
): PostHogKit {
  return createPostHogKit({
    env: {},
    apiKey: emulator.projectApiKey,
    host: emulator.url,
    shutdownHooks: false,
    ...options,
    clientOptions: { fetchRetryCount: 0, flushAt: 10_000, flushInterval: 60_000 },
  });
}

/** The value of an `$exception` event's first exception. */
export const exceptionValue = (e: RecordedEvent) =>
  (e.properties.$exception_list as Array<{ value?: string }> | undefined)?.[0]?.value;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
