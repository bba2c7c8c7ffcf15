// What every benchmark app shares: the clients and the per-request work.
import { AsyncLocalStorage } from 'node:async_hooks';
import { capture, createPostHogKit, featureEnabled, type PostHogKit } from '@posthog-kit/core';
import { PostHog } from 'posthog-node';

/** bare: no PostHog; context: our middleware only; work: ours + one capture and one local flag;
 * posthog-context / posthog-work: posthog-node's own integration, alone / with the same work;
 * als-floor: a middleware that only runs the rest of the request in AsyncLocalStorage, the
 * least any request context built on it can cost. */
export type Config = 'bare' | 'context' | 'work' | 'posthog-context' | 'posthog-work' | 'als-floor';

/** The store `als-floor` enters: one object per request, as a context would. */
export const floorStorage = new AsyncLocalStorage<{ n: number }>();

export const FLAG = 'bench-flag';

/** Each configuration captures its own event name, so the bench can count what arrived. */
const EVENT = `bench_hello_${process.argv[3] ?? 'unknown'}`;

const env = () => ({
  host: process.env.EMULATOR_URL as string,
  apiKey: process.env.PROJECT_KEY as string,
  personalApiKey: process.env.PERSONAL_KEY as string,
  clientOptions: JSON.parse(process.env.CLIENT_OPTIONS ?? '{}') as Record<string, unknown>,
});

/** Our kit with local evaluation, definitions loaded before the app listens. */
export async function ourKit(): Promise<PostHogKit> {
  const { host, apiKey, personalApiKey, clientOptions } = env();
  const kit = createPostHogKit({ env: {}, host, apiKey, personalApiKey, clientOptions });
  await kit.client?.waitForLocalEvaluationReady(10_000);
  return kit;
}

/** A posthog-node client configured as its docs say, with local evaluation and its own
 * defaults (`--client-options` tunes our kit only). */
export async function theirClient(): Promise<PostHog> {
  const { host, apiKey, personalApiKey } = env();
  const client = new PostHog(apiKey, { host, secretKey: personalApiKey });
  await client.waitForLocalEvaluationReady(10_000);
  return client;
}

/** One capture and one local flag evaluation, through our sugar (context from the request). */
export async function ourWork(): Promise<string> {
  capture(EVENT, { properties: { n: 1 } });
  return (await featureEnabled(FLAG)) ? 'hello on' : 'hello off';
}

/** The same work through posthog-node, with its own request context. */
export async function theirWork(client: PostHog): Promise<string> {
  client.capture({ event: EVENT, properties: { n: 1 } } as Parameters<PostHog['capture']>[0]);
  const result = await client.getFeatureFlagResult(FLAG);
  return result?.enabled ? 'hello on' : 'hello off';
}
