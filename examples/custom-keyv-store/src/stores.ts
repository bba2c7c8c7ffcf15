// The two stores of the example, each a few lines. Any Keyv instance or Keyv store works
// as `cache`; `redisUrl` (POSTHOG_REDIS_URL) is the shortcut for the first one.
import KeyvRedis from '@keyv/redis';
import { Keyv } from 'keyv';
import { SqliteStore } from './sqlite-store.ts';

/** Redis through @keyv/redis: the lease is atomic (SET NX PX and Lua compare-and-delete). */
export function redisCache(url: string): Keyv {
  return new Keyv(new KeyvRedis(url), { namespace: undefined });
}

/** A Keyv store of your own, here one SQLite file that processes on one host share. */
export function sqliteCache(file: string): SqliteStore {
  return new SqliteStore(file);
}
