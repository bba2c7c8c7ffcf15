// Vitest global setup: one redis-server on a free port for a test project, its URL
// handed to the tests with `inject('redisUrl')`, and a local 3-node Redis Cluster, its
// seed nodes (comma-separated URLs) as `inject('redisClusterUrl')`. Without redis-server
// (or redis-cli, which joins the cluster) the Redis tests skip and say how to install it;
// in CI (`CI` set) that is an error instead.
import type { TestProject } from 'vitest/node';
import {
  findRedisCli,
  findRedisServer,
  REDIS_INSTALL_HINT,
  RedisCluster,
  RedisServer,
} from './redis-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the test project's redis-server; empty when there is none. */
    redisUrl: string;
    /** Why there is no redis-server (the skip reason of the Redis tests); empty when there is one. */
    redisSkipReason: string;
    /** The local Redis Cluster's seed nodes, comma-separated; empty when there is none. */
    redisClusterUrl: string;
    /** Why there is no cluster (the skip reason of the cluster tests); empty when there is one. */
    redisClusterSkipReason: string;
  }
}

function missing(project: TestProject, what: string, key: 'redis' | 'cluster'): string {
  const reason = `${what} not found: ${REDIS_INSTALL_HINT}; the Redis ${key === 'cluster' ? 'Cluster ' : ''}tests are skipped`;
  if (process.env.CI) throw new Error(`[redis] ${reason} (not allowed in CI)`);
  console.warn(`[redis] ${reason}`);
  if (key === 'redis') {
    project.provide('redisUrl', '');
    project.provide('redisSkipReason', reason);
  }
  project.provide('redisClusterUrl', '');
  project.provide('redisClusterSkipReason', reason);
  return reason;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (!findRedisServer()) {
    missing(project, 'redis-server', 'redis');
    return async () => {};
  }
  const server = await RedisServer.start();
  project.provide('redisUrl', server.url);
  project.provide('redisSkipReason', '');
  let cluster: RedisCluster | undefined;
  if (!findRedisCli()) {
    missing(project, 'redis-cli', 'cluster');
  } else {
    cluster = await RedisCluster.start();
    project.provide('redisClusterUrl', cluster.url);
    project.provide('redisClusterSkipReason', '');
  }
  return async () => {
    await server.stop();
    await cluster?.stop();
  };
}
