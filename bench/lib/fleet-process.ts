// One process of the fleet bench, on the built @posthog-kit/core: a kit sharing flag
// definitions through Redis (or a Redis Cluster), evaluating a random user's flag every
// 20 ms and checking each answer against the one posthog-node gives. Reports over IPC.
//   FLEET='{"host","apiKey","personalApiKey"?,"redisUrl","pollMs","mode","prefix","expected","person"}'
//   mode "poll": with the personal key (leader election); "store": store-only, no key.
import { createPostHogKit } from '@posthog-kit/core';

interface Config {
  host: string;
  apiKey: string;
  personalApiKey?: string;
  redisUrl: string;
  pollMs: number;
  mode: 'poll' | 'store';
  prefix: string;
  expected: Record<string, Record<string, boolean | string | undefined>>;
  person: Record<string, Record<string, string>>;
}

const config = JSON.parse(process.env.FLEET ?? '{}') as Config;
const started = performance.now();
const send = (message: Record<string, unknown>) => {
  if (process.connected) process.send?.(message, undefined, undefined, () => {});
};
// The bench went away: nothing to report to.
process.on('disconnect', () => process.exit(0));

// Requests this process makes to PostHog's flag endpoints (definitions, /flags).
let requests = 0;
const kit = createPostHogKit({
  fetch: (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (new URL(url).pathname.startsWith('/flags')) requests++;
    return globalThis.fetch(input, init);
  },
  env: {},
  apiKey: config.apiKey,
  host: config.host,
  personalApiKey: config.mode === 'poll' ? config.personalApiKey : undefined,
  redisUrl: config.redisUrl,
  pollIntervalMs: config.pollMs,
  flagDefinitionsSource: config.mode,
  flagDefinitionsCachePrefix: config.prefix,
  errorMode: 'ignore',
  clientOptions: { fetchRetryCount: 0, requestTimeout: 3_000, flushInterval: 60_000 },
});

const users = Object.keys(config.expected);
const keys = Object.keys(config.expected[users[0] as string] ?? {});
let firstAnswerMs: number | undefined;
let evaluations = 0;
let wrong = 0;
let missing = 0;
let stopping = false;

const status = (type: 'status' | 'final') => {
  const s = kit.flagsStatus();
  return {
    type,
    pid: process.pid,
    leader: s.leader,
    source: s.source,
    firstAnswerMs,
    evaluations,
    wrong,
    missing,
    requests,
  };
};

const reporter = setInterval(() => send(status('status')), 100);
process.on('message', (message) => {
  if (message === 'stop') stopping = true;
});

while (!stopping) {
  const user = users[Math.floor(Math.random() * users.length)] as string;
  const key = keys[Math.floor(Math.random() * keys.length)] as string;
  const value = await kit.getFeatureFlag(key, {
    distinctId: user,
    personProperties: config.person[user],
    onlyEvaluateLocally: true,
    sendFeatureFlagEvents: false,
  });
  if (firstAnswerMs === undefined && value !== undefined) {
    firstAnswerMs = performance.now() - started;
    send(status('status'));
  }
  // From the first answer on: every answer must be posthog-node's, none missing.
  if (firstAnswerMs !== undefined) {
    evaluations++;
    if (value === undefined) missing++;
    else if (value !== config.expected[user]?.[key]) wrong++;
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
}
clearInterval(reporter);
await kit.shutdown(3_000);
send(status('final'));
if (process.connected) process.disconnect();
