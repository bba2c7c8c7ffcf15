import type { PostHogOptions } from 'posthog-node';
import type { ErrorReporter } from './errors.ts';
import { QueueDrops, serialisableEvents } from './events.ts';
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
  drops: QueueDrops | undefined;

  protected override flushAutomatic(): Promise<void> {
    return super.flushAutomatic().catch(() => {});
  }

  // posthog-node drops the oldest event of a full queue with no word: the kit counts them.
  protected override enqueue(
    type: string,
    message: unknown,
    options?: unknown,
    route?: string,
  ): void {
    this.drops?.before(this.#queueLength(message, route));
    super.enqueue(type, message, options as never, route);
  }

  #queueLength(message: unknown, route: string | undefined): number {
    const key = this.persistedQueueKeyForRoute(route ?? this.getQueueRouteKey(message as never));
    return ((this.getPersistedProperty(key) as unknown[] | undefined) ?? []).length;
  }

  /** The queue's length after a flush (default route). */
  queued(): number {
    return this.#queueLength({}, undefined);
  }
}

/**
 * Whether the kit polls flag definitions itself, on an unref'd timer: yes, unless the user
 * set posthog-node's interval or the definitions are shared (their lease follows
 * posthog-node's cadence).
 */
export function kitPolls(
  flags: FlagCaches | undefined,
  clientOptions: Record<string, unknown> | undefined,
): boolean {
  return clientOptions?.featureFlagsPollingInterval === undefined && !flags?.definitions;
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
export function createClient(p: ClientParts): FlagRecordingPostHog & { drops?: QueueDrops } {
  const s = p.settings;
  const user = p.clientOptions as Partial<PostHogOptions> | undefined;
  const client = new KitClient(s.apiKey as string, {
    ...CLIENT_DEFAULTS,
    host: s.host,
    // Store-only: none, so posthog-node is a cache-only reader and never asks for definitions.
    secretKey: p.flags ? p.flags.secretKey : s.personalApiKey,
    disableGeoip: s.disableGeoip,
    // posthog-node's poller off where the kit polls itself (poller.ts).
    featureFlagsPollingInterval: kitPolls(p.flags, p.clientOptions)
      ? null
      : (user?.featureFlagsPollingInterval ?? s.pollIntervalMs),
    fetch: (p.flags?.wrapFetch(p.transport.fetch) ?? p.transport.fetch) as PostHogOptions['fetch'],
    flagDefinitionCacheProvider: p.flags?.definitions,
    ...user,
    before_send: [serialisableEvents(p.errors), ...p.exceptions.beforeSend(user?.before_send)],
  });
  // posthog-node's own rule: the queue holds at least one flush.
  const maxQueueSize = Math.max(
    Number(user?.flushAt ?? CLIENT_DEFAULTS.flushAt),
    Number(user?.maxQueueSize ?? CLIENT_DEFAULTS.maxQueueSize),
  );
  const drops = new QueueDrops(p.errors, maxQueueSize);
  client.drops = drops;
  client.on('flush', () => drops.drained(client.queued()));
  client.on('error', (error: unknown) => {
    if (!reportedByTransport(error)) p.errors.background('posthog-node', error);
  });
  if (s.debug) client.debug(true);
  p.flags?.attach(client);
  return client;
}
