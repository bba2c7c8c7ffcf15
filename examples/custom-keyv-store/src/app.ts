// One application process: a kit whose flag definitions are shared through the store named
// by STORE (`redis` with REDIS_URL, or `sqlite` with SQLITE_FILE); it evaluates a flag for
// a few users every 100 ms for RUN_MS, then prints what it saw as one JSON line.
import { createPostHogKit } from '@posthog-kit/core';
import { redisCache, sqliteCache } from './stores.ts';

const store = process.env.STORE ?? 'sqlite';
const cache =
  store === 'redis'
    ? redisCache(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
    : sqliteCache(process.env.SQLITE_FILE ?? 'flags.sqlite');
// POSTHOG_HOST, POSTHOG_PROJECT_API_KEY, POSTHOG_PERSONAL_API_KEY and POSTHOG_POLL_INTERVAL
// come from the environment.
const kit = createPostHogKit({ cache });

const runMs = Number(process.env.RUN_MS ?? 3_000);
const answers = new Map<string, boolean>();
const until = Date.now() + runMs;
while (Date.now() < until) {
  for (const user of ['ada', 'grace', 'linus', 'margaret', 'barbara']) {
    answers.set(user, await kit.featureEnabled('new-checkout', { distinctId: user }));
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
}
await kit.shutdown(); // releases the lease if this process leads
// A store you pass in is yours: close its connection yourself.
if ('disconnect' in cache) await cache.disconnect();
console.log(JSON.stringify({ pid: process.pid, store, answers: Object.fromEntries(answers) }));
