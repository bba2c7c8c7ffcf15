import { GARBAGE, type GuardedStore, type RedisEvalClient, readKey } from './store.ts';

/** What one attempt to take or keep the lease found. */
export interface LeaseAttempt {
  /** This process holds the lease now. */
  held: boolean;
  /** It was taken just now (not renewed). */
  acquired: boolean;
  /** When another process holds it: how long until its lease ends, if known. */
  retryInMs: number | undefined;
  /** Who holds it (an owner token), when known. */
  owner: string | undefined;
}

/** A leader lease on a store: one owner at a time, with a TTL, released only by its owner. */
export interface Lease {
  /** Whether only one process can ever hold it (Redis), or only most of the time. */
  readonly atomic: boolean;
  /** Takes the lease if it is free, extends it if this process holds it. Undefined when the store failed. */
  acquire(): Promise<LeaseAttempt | undefined>;
  /** Gives the lease up, only if this process still holds it. */
  release(): Promise<void>;
}

// Extend if ours; else take it if free (SET NX PX); else say who owns it and how long it
// has left. A lock without expiry (left by something else) gets one, so it cannot block
// forever. One key per script: on a Redis Cluster it runs, atomically, on the slot's master.
const ACQUIRE_SCRIPT = `
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {2, 0}
end
if not owner and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, 0}
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {0, ttl, owner or ''}
`;

// Compare-and-delete: never removes another owner's lease.
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`;

/** SHA-1 as hex (Web Crypto), the name Redis gives a script. */
async function sha1Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-1', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

const shas = new Map<string, Promise<string>>();

/**
 * Runs a script by its SHA-1 (EVALSHA: a follower's poll sends 40 characters, not the
 * script), loading it with EVAL where the node does not have it yet (a new node, a
 * restart, a replica just promoted).
 */
async function runScript(
  client: RedisEvalClient,
  script: string,
  options: { keys: string[]; arguments: string[] },
): Promise<unknown> {
  if (typeof client.evalSha !== 'function') return client.eval(script, options);
  let sha = shas.get(script);
  if (!sha) {
    sha = sha1Hex(script);
    shas.set(script, sha);
  }
  try {
    return await client.evalSha(await sha, options);
  } catch (error) {
    if (!String((error as Error | undefined)?.message ?? error).includes('NOSCRIPT')) throw error;
    return client.eval(script, options);
  }
}

/**
 * The atomic lease: one Lua script per step through the node-redis client @keyv/redis
 * exposes (a server's, or a cluster's, which routes the script by its one key).
 */
export class RedisLease implements Lease {
  readonly atomic = true;
  private readonly store: GuardedStore;
  private readonly key: string;
  private readonly token: string;
  private readonly ttlMs: number;

  constructor(store: GuardedStore, key: string, token: string, ttlMs: number) {
    this.store = store;
    this.key = key;
    this.token = token;
    this.ttlMs = ttlMs;
  }

  async acquire(): Promise<LeaseAttempt | undefined> {
    const result = await this.store.run(
      'lease',
      async (s) => {
        const client = await (s.redis as NonNullable<typeof s.redis>)();
        return runScript(client, ACQUIRE_SCRIPT, {
          keys: [this.key],
          arguments: [this.token, String(Math.ceil(this.ttlMs))],
        });
      },
      { key: this.key, write: true },
    );
    if (!result.ok || !Array.isArray(result.value)) return undefined;
    const [code, ttl] = result.value.slice(0, 2).map(Number);
    if (code === 1 || code === 2) {
      return { held: true, acquired: code === 1, retryInMs: undefined, owner: this.token };
    }
    if (code === 0) {
      const owner = result.value[2];
      return {
        held: false,
        acquired: false,
        retryInMs: ttl !== undefined && ttl >= 0 ? ttl : 0,
        owner: typeof owner === 'string' && owner !== '' ? owner : undefined,
      };
    }
    return undefined;
  }

  async release(): Promise<void> {
    await this.store.run(
      'lease release',
      async (s) => {
        const client = await (s.redis as NonNullable<typeof s.redis>)();
        return runScript(client, RELEASE_SCRIPT, { keys: [this.key], arguments: [this.token] });
      },
      { key: this.key, write: true },
    );
  }
}

interface LeaseValue {
  v: 1;
  owner: string;
  expiresAt: number;
}

function leaseValue(value: unknown): LeaseValue | undefined {
  const v = value as Partial<LeaseValue> | null | undefined;
  if (value === GARBAGE || typeof v !== 'object' || v === null) return undefined;
  return v.v === 1 && typeof v.owner === 'string' && typeof v.expiresAt === 'number'
    ? (v as LeaseValue)
    : undefined;
}

/**
 * The lease on any other Keyv store: read, write, read back. Without an atomic
 * set-if-absent two processes racing for a free lease can, for a moment, both believe
 * they hold it; the read-back catches most of those races, and the cost of the rest is
 * one extra definitions fetch (both publish the same data).
 */
export class KeyvLease implements Lease {
  readonly atomic = false;
  private readonly store: GuardedStore;
  private readonly key: string;
  private readonly token: string;
  private readonly ttlMs: number;

  constructor(store: GuardedStore, key: string, token: string, ttlMs: number) {
    this.store = store;
    this.key = key;
    this.token = token;
    this.ttlMs = ttlMs;
  }

  async acquire(): Promise<LeaseAttempt | undefined> {
    const result = await this.store.run(
      'lease',
      async (s, deadline): Promise<LeaseAttempt> => {
        const now = Date.now();
        const current = leaseValue(await readKey(s.keyv, this.key));
        const mine: LeaseValue = { v: 1, owner: this.token, expiresAt: now + this.ttlMs };
        if (current && current.owner !== this.token && current.expiresAt > now) {
          return {
            held: false,
            acquired: false,
            retryInMs: current.expiresAt - now,
            owner: current.owner,
          };
        }
        if (Date.now() > deadline) throw new Error('lease: out of time');
        await s.keyv.set(this.key, mine, this.ttlMs);
        if (current?.owner === this.token) {
          return { held: true, acquired: false, retryInMs: undefined, owner: this.token };
        }
        // Read back: of two processes that both saw it free, the last writer wins.
        const after = leaseValue(await readKey(s.keyv, this.key));
        const held = after?.owner === this.token;
        return {
          held,
          acquired: held,
          retryInMs: held || !after ? undefined : Math.max(0, after.expiresAt - Date.now()),
          owner: after?.owner,
        };
      },
      { key: this.key, write: true },
    );
    return result.ok ? result.value : undefined;
  }

  async release(): Promise<void> {
    await this.store.run(
      'lease release',
      async (s) => {
        const current = leaseValue(await readKey(s.keyv, this.key));
        if (current?.owner === this.token) await s.keyv.delete(this.key);
      },
      { key: this.key, write: true },
    );
  }
}
