import type { PostHogOptions } from 'posthog-node';
import type { ErrorReporter } from './errors.ts';
import type { ExceptionPipeline } from './exception-pipeline.ts';
import { type FlagCaches, FlagRecordingPostHog } from './flags/index.ts';
import type { ResolvedSettings } from './settings.ts';
import { reportedByTransport, type Transport } from './transport.ts';

/**
 * posthog-node defaults the kit changes, each measured in bench/ (BENCHMARKS.md). With
 * its defaults a busy server fills the queue faster than 100-event batches drain it,
 * and the oldest events are dropped: 500-event batches keep up, and a 10,000-event
 * queue absorbs bursts and outages.
 */
const CLIENT_DEFAULTS: Partial<PostHogOptions> = {
  flushAt: 100,
  flushInterval: 5_000,
  maxBatchSize: 500,
  maxQueueSize: 10_000,
};

/**
 * posthog-node's client, quiet: a failed background flush is already emitted as
 * 'error' (reported through the kit's error mode); posthog-node would also print it
 * with console.error, past the error mode and the logger.
 */
class KitClient extends FlagRecordingPostHog {
  protected override flushAutomatic(): Promise<void> {
    return super.flushAutomatic().catch(() => {});
  }
}

/** What the client is built from. */
export interface ClientParts {
  settings: ResolvedSettings;
  errors: ErrorReporter;
  transport: Transport;
  flags: FlagCaches | undefined;
  exceptions: ExceptionPipeline;
  clientOptions: Record<string, unknown> | undefined;
}

/** The posthog-node client of an enabled kit, its errors routed through the error mode. */
export function createClient(p: ClientParts): FlagRecordingPostHog {
  const s = p.settings;
  const user = p.clientOptions as Partial<PostHogOptions> | undefined;
  const client = new KitClient(s.apiKey as string, {
    ...CLIENT_DEFAULTS,
    host: s.host,
    // Store-only: none, so posthog-node is a cache-only reader and never asks for definitions.
    secretKey: p.flags ? p.flags.secretKey : s.personalApiKey,
    disableGeoip: s.disableGeoip,
    featureFlagsPollingInterval: s.pollIntervalMs,
    fetch: (p.flags?.wrapFetch(p.transport.fetch) ?? p.transport.fetch) as PostHogOptions['fetch'],
    flagDefinitionCacheProvider: p.flags?.definitions,
    ...user,
    before_send: p.exceptions.beforeSend(user?.before_send),
  });
  client.on('error', (error: unknown) => {
    if (!reportedByTransport(error)) p.errors.background('posthog-node', error);
  });
  if (s.debug) client.debug(true);
  p.flags?.attach(client);
  return client;
}
