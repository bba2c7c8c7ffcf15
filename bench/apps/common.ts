// What every benchmark app shares: the clients and the per-request work.
import { capture, createPostHogKit, featureEnabled, type PostHogKit } from '@posthog-kit/core';
import { PostHog } from 'posthog-node';

/** bare: no PostHog; context: our middleware only; work: ours + one capture and one local flag;
 * posthog-context / posthog-work: posthog-node's own integration, alone / with the same work. */
export type Config = 'bare' | 'context' | 'work' | 'posthog-context' | 'posthog-work';

export const FLAG = 'bench-flag';

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

/** A posthog-node client configured as its docs say, with local evaluation. */
export async function theirClient(): Promise<PostHog> {
  const { host, apiKey, personalApiKey, clientOptions } = env();
  const client = new PostHog(apiKey, { host, personalApiKey, ...clientOptions });
  await client.waitForLocalEvaluationReady(10_000);
  return client;
}

/** One capture and one local flag evaluation, through our sugar (context from the request). */
export async function ourWork(): Promise<string> {
  capture('bench_hello', { properties: { n: 1 } });
  return (await featureEnabled(FLAG)) ? 'hello on' : 'hello off';
}

/** The same work through posthog-node, with its own request context. */
export async function theirWork(client: PostHog): Promise<string> {
  client.capture({ event: 'bench_hello', properties: { n: 1 } } as Parameters<
    PostHog['capture']
  >[0]);
  const result = await client.getFeatureFlagResult(FLAG);
  return result?.enabled ? 'hello on' : 'hello off';
}
