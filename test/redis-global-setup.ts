// Vitest global setup: one redis-server on a free port for a test project, its URL
// handed to the tests with `inject('redisUrl')`. Without redis-server the Redis tests
// skip and say how to install it; in CI (`CI` set) that is an error instead.
import type { TestProject } from 'vitest/node';
import { findRedisServer, REDIS_INSTALL_HINT, RedisServer } from './redis-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the test project's redis-server; empty when there is none. */
    redisUrl: string;
    /** Why there is no redis-server (the skip reason of the Redis tests); empty when there is one. */
    redisSkipReason: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (!findRedisServer()) {
    const reason = `redis-server not found: ${REDIS_INSTALL_HINT}; the Redis tests are skipped`;
    if (process.env.CI) throw new Error(`[redis] ${reason} (not allowed in CI)`);
    console.warn(`[redis] ${reason}`);
    project.provide('redisUrl', '');
    project.provide('redisSkipReason', reason);
    return async () => {};
  }
  const server = await RedisServer.start();
  project.provide('redisUrl', server.url);
  project.provide('redisSkipReason', '');
  return () => server.stop();
}
