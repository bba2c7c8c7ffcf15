import { flag, type PostHogEmulator } from '@posthog-kit/testing';
import { PostHog } from 'posthog-node';
// Types only: `inject('redisUrl')` and `inject('redisSkipReason')`, provided by the global setup.
import type {} from '../../../test/redis-global-setup.ts';
import type { FlagCaches } from '../src/flags/index.ts';
import type { PostHogKit } from '../src/index.ts';

/** A kit's flag caches (internal), for tests that look inside. */
export function flagsOf(kit: PostHogKit): FlagCaches | undefined {
  return kit.flags;
}

/** Whether the kit leads its shared definitions. */
export const isLeader = (kit: PostHogKit): boolean => flagsOf(kit)?.definitions?.leader === true;

/** The flags the flag cache tests evaluate: on for all, half the users, by property, variants. */
export const FLAGS = [
  flag('everyone', { rollout: 100 }),
  flag('half', { rollout: 50 }),
  flag('pro-only', { conditions: [{ properties: [{ key: 'plan', value: 'pro' }] }] }),
  flag('colour', { variants: { red: 50, blue: 50 }, payloads: { red: { hex: '#f00' } } }),
];
export const FLAG_KEYS = FLAGS.map((f) => f.key);
export const USERS = Array.from({ length: 12 }, (_, i) => `user-${i}`);
export const PERSON = (user: string) => ({
  plan: Number(user.split('-')[1]) % 3 === 0 ? 'pro' : 'free',
});

/** Every user's answer for every flag: `answers[user][flag]`. */
export type Answers = Record<string, Record<string, boolean | string | undefined>>;

/**
 * The kit's answers for every user and flag (no exposure events), as `referenceAnswers` has
 * posthog-node's; locally only unless `local` is false.
 */
export async function answersOf(
  kit: PostHogKit,
  { users = USERS, local = true }: { users?: string[]; local?: boolean } = {},
): Promise<Answers> {
  const out: Answers = {};
  for (const user of users) {
    const row: Answers[string] = {};
    for (const key of FLAG_KEYS) {
      row[key] = await kit.getFeatureFlag(key, {
        distinctId: user,
        personProperties: PERSON(user),
        onlyEvaluateLocally: local,
        sendFeatureFlagEvents: false,
      });
    }
    out[user] = row;
  }
  return out;
}

/**
 * What posthog-node itself answers for every user and flag, evaluated locally against the
 * emulator (then the emulator's counts are reset, so the test counts only its own fetches).
 */
export async function referenceAnswers(emulator: PostHogEmulator): Promise<Answers> {
  const client = new PostHog(emulator.projectApiKey, {
    host: emulator.url,
    personalApiKey: emulator.personalApiKey,
    featureFlagsPollingInterval: 60_000,
    fetchRetryCount: 0,
  });
  const answers: Record<string, Record<string, boolean | string | undefined>> = {};
  for (const user of USERS) {
    const row: Record<string, boolean | string | undefined> = {};
    for (const key of FLAG_KEYS) {
      const result = await client.getFeatureFlagResult(key, user, {
        personProperties: PERSON(user),
        onlyEvaluateLocally: true,
        sendFeatureFlagEvents: false,
      });
      row[key] =
        result === undefined ? undefined : result.enabled ? (result.variant ?? true) : false;
    }
    answers[user] = row;
  }
  await client.shutdown();
  emulator.reset();
  return answers;
}

/** Polls `check` every 20 ms until it is true or `timeoutMs` passed; returns whether it became true. */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return check();
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let counter = 0;
/** A prefix no other test uses, so tests can share one store. */
export function uniquePrefix(name: string): string {
  counter++;
  return `test:${name}:${process.pid}:${Date.now().toString(36)}:${counter}`;
}

/**
 * A tiny custom Keyv store (the adapter interface: get/set/delete/clear), async and with
 * TTLs, as a user might write one over their own database: any Keyv store must work.
 */
export class AsyncMapStore {
  readonly entries = new Map<string, { value: unknown; expiresAt: number | undefined }>();
  namespace: string | undefined;
  opts = { dialect: 'async-map' };

  async get(key: string): Promise<unknown> {
    await Promise.resolve();
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    await Promise.resolve();
    this.entries.set(key, { value, expiresAt: ttl ? Date.now() + ttl : undefined });
    return true;
  }

  async delete(key: string): Promise<boolean> {
    await Promise.resolve();
    return this.entries.delete(key);
  }

  async clear(): Promise<void> {
    this.entries.clear();
  }
}

/** A Keyv store whose promises never settle: a store that hangs. */
export function hangingStore() {
  const never = () => new Promise<never>(() => {});
  return { get: never, set: never, delete: never, clear: never, opts: { dialect: 'hang' } };
}
