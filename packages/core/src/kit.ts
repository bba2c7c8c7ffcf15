import { type PostHog, type PostHogOptions, uuidv7 } from 'posthog-node';
import { ContextStore, defaultContextStorage, type Scope } from './context.ts';
import { describeError, ErrorReporter } from './errors.ts';
import {
  exceptionBeforeSend,
  markCaptured,
  noteException,
  setupExceptions,
  teardownExceptions,
  wasCaptured,
} from './exceptions.ts';
import { FlagCaches, FlagRecordingPostHog, redisSecrets } from './flags/index.ts';
import { type PostHogKitOptions, parseSettings, type ResolvedSettings } from './settings.ts';
import { reportedByTransport, Transport } from './transport.ts';
import type { Groups, Properties, RequestHooks } from './types.ts';
import { validateSetup } from './validation.ts';

/** A flag's value: off, on, or a variant. */
export type FlagValue = boolean | string;

/** A JSON value, as flag payloads are. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

/** A flag's full answer. */
export interface FlagResult {
  key: string;
  enabled: boolean;
  variant: string | undefined;
  payload: JsonValue | undefined;
  reason?: string | undefined;
}

/** Options of `capture`. Inside a request the context fills in what is not given. */
export interface CaptureOptions {
  /** @default the context's distinct id, else a personless event */
  distinctId?: string | undefined;
  /** Win over the context's tags. */
  properties?: Properties | undefined;
  /** @default the context's groups */
  groups?: Groups | undefined;
  /** @default now */
  timestamp?: Date | undefined;
  /** @default a new UUIDv7 */
  uuid?: string | undefined;
  /**
   * Evaluate flags and attach them to the event.
   * @default false
   */
  sendFeatureFlags?: boolean | undefined;
  /** @default the kit's `disableGeoip` */
  disableGeoip?: boolean | undefined;
}

/** Options of `captureException`. */
export interface CaptureExceptionOptions {
  /** @default the context's distinct id */
  distinctId?: string | undefined;
  /** Added to the `$exception` event; win over tags. */
  properties?: Properties | undefined;
}

/** Options of `identify`. */
export interface IdentifyOptions {
  /** Person properties to set (`$set`). */
  properties?: Properties | undefined;
  /** Person properties to set once (`$set_once`). */
  setOnce?: Properties | undefined;
  /** @default the kit's `disableGeoip` */
  disableGeoip?: boolean | undefined;
}

/** Options naming whose data a call is about. */
export interface DistinctIdOptions {
  /** @default the context's distinct id */
  distinctId?: string | undefined;
}

/** Options of `groupIdentify`. */
export interface GroupIdentifyOptions extends DistinctIdOptions {
  /** Group properties to set. */
  properties?: Properties | undefined;
}

/** Options of the flag functions. */
export interface FlagOptions {
  /** @default the context's distinct id */
  distinctId?: string | undefined;
  /** @default the context's groups */
  groups?: Groups | undefined;
  personProperties?: Properties | undefined;
  groupProperties?: Record<string, Properties> | undefined;
  /**
   * Never ask PostHog; answer from local definitions or not at all.
   * @default false
   */
  onlyEvaluateLocally?: boolean | undefined;
  /**
   * Record `$feature_flag_called`.
   * @default true
   */
  sendFeatureFlagEvents?: boolean | undefined;
  /** @default the kit's `disableGeoip` */
  disableGeoip?: boolean | undefined;
}

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

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 5_000;

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

/**
 * One configured PostHog: settings, the posthog-node client (none when disabled:
 * every call is then a cheap no-op), the error mode and the context store.
 */
export class PostHogKit {
  readonly settings: ResolvedSettings;
  /** The posthog-node client; undefined when the kit is disabled. */
  readonly client: PostHog | undefined;
  readonly errors: ErrorReporter;
  readonly context: ContextStore;
  /** The request hooks given in code (extraTags, requestFilter, ...). */
  readonly hooks: RequestHooks;
  /** Settles when startup validation is done and, with code variables on, the debugger is attached. */
  readonly ready: Promise<void>;
  /** @internal */ readonly transport: Transport;
  /** The shared flag definitions and the flag result cache, when the settings ask for them. @internal */
  flags: FlagCaches | undefined;
  private readonly baseFetch: typeof fetch;
  private shutdownPromise: Promise<void> | undefined;

  constructor(options: PostHogKitOptions = {}) {
    const settings = parseSettings(options);
    this.settings = settings;
    this.errors = new ErrorReporter(settings.errorMode, options.logger, [
      settings.apiKey,
      settings.personalApiKey,
      ...redisSecrets(settings.redisUrl),
    ]);
    this.context = options.contextStorage
      ? new ContextStore(options.contextStorage as ContextStore['storage'])
      : sharedContextStore();
    this.hooks = {
      extraTags: options.extraTags,
      requestFilter: options.requestFilter,
      tagMap: options.tagMap,
      resolveUser: options.resolveUser,
      shouldCaptureError: options.shouldCaptureError,
    };
    this.baseFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.transport = new Transport(this.baseFetch, this.errors, settings.host);
    this.client = settings.enabled ? this.createClient(options) : undefined;
    // Also waits for the code-variables debugger, so errors thrown after `ready` get variables.
    const exceptionsReady = setupExceptions(this);
    this.ready =
      settings.validateOnStartup && this.client
        ? Promise.all([this.startupValidation(), exceptionsReady]).then(() => {})
        : exceptionsReady;
  }

  /** Whether events are sent (a project key is set and the kit is not turned off). */
  get enabled(): boolean {
    return this.client !== undefined;
  }

  private createClient(options: PostHogKitOptions): PostHog {
    const s = this.settings;
    this.flags = FlagCaches.create(s, options.cache, this.errors, options.clientOptions);
    const client = new KitClient(s.apiKey as string, {
      ...CLIENT_DEFAULTS,
      host: s.host,
      secretKey: s.personalApiKey,
      disableGeoip: s.disableGeoip,
      featureFlagsPollingInterval: s.pollIntervalMs,
      fetch: (this.flags?.wrapFetch(this.transport.fetch) ??
        this.transport.fetch) as PostHogOptions['fetch'],
      flagDefinitionCacheProvider: this.flags?.definitions,
      ...(options.clientOptions as Partial<PostHogOptions> | undefined),
      before_send: exceptionBeforeSend(
        this,
        (options.clientOptions as Partial<PostHogOptions> | undefined)?.before_send,
      ),
    });
    client.on('error', (error: unknown) => {
      if (!reportedByTransport(error)) this.errors.background('posthog-node', error);
    });
    if (s.debug) client.debug(true);
    this.flags?.attach(client);
    return client;
  }

  private startupValidation(): Promise<void> {
    const done = this.validate();
    // Raise mode: awaiting `ready` throws; nobody awaiting still sees one log line.
    done.catch((error: unknown) => {
      if (this.errors.mode === 'raise')
        this.errors.background('validation', error, describeError(error));
    });
    return done;
  }

  /**
   * Sends one validation event and, with a personal key, fetches flag definitions once.
   * A failure names the key or host that is wrong and goes through the error mode.
   */
  async validate(): Promise<void> {
    // The plain fetch: validation reports its own findings, the transport would repeat them.
    const problem = await validateSetup(this.settings, this.baseFetch);
    if (problem) this.errors.foreground('validation', new Error(problem), problem);
  }

  // ----- events -----

  /** Captures an event. Inside a request the context supplies ids and tags. */
  capture(
    event: string,
    options?: CaptureOptions,
    scope: Scope | undefined = this.context.current(),
  ): void {
    const client = this.client;
    if (!client) return;
    client.capture(this.message(event, options, scope));
  }

  /** Captures an event and sends it now; in `raise` mode a failed send throws. */
  async captureImmediate(
    event: string,
    options?: CaptureOptions,
    scope: Scope | undefined = this.context.current(),
  ): Promise<void> {
    const client = this.client;
    if (!client) return;
    client.capture(this.message(event, options, scope));
    await this.flush();
  }

  /**
   * Captures an error as `$exception` with the context's ids and tags, once per error
   * object, whoever sees it first. Returns the event's uuid, or undefined when skipped.
   */
  captureException(
    error: unknown,
    options?: CaptureExceptionOptions,
    scope: Scope | undefined = this.context.current(),
  ): string | undefined {
    const client = this.client;
    if (!client || wasCaptured(error)) return undefined;
    const uuid = uuidv7();
    noteException(this, uuid, error, scope);
    client.captureException(
      error,
      options?.distinctId ?? scope?.distinctId,
      this.properties(scope, options?.properties),
      uuid,
    );
    // After the call: posthog-node itself skips errors that carry the mark.
    markCaptured(error);
    return uuid;
  }

  /** Sets person properties and links the distinct id to the person. */
  identify(
    distinctId?: string,
    options?: IdentifyOptions,
    scope: Scope | undefined = this.context.current(),
  ): void {
    const client = this.client;
    const id = distinctId ?? scope?.distinctId;
    if (!client || !this.requireId(id, 'identify')) return;
    client.identify({
      distinctId: id,
      properties: { $set: options?.properties ?? {}, $set_once: options?.setOnce ?? {} },
      disableGeoip: options?.disableGeoip ?? this.settings.disableGeoip,
    });
  }

  /** Sets person properties (`$set`). */
  set(
    properties: Properties,
    options?: DistinctIdOptions,
    scope: Scope | undefined = this.context.current(),
  ): void {
    this.personEvent('$set', properties, options?.distinctId ?? scope?.distinctId);
  }

  /** Sets person properties once (`$set_once`). */
  setOnce(
    properties: Properties,
    options?: DistinctIdOptions,
    scope: Scope | undefined = this.context.current(),
  ): void {
    this.personEvent('$set_once', properties, options?.distinctId ?? scope?.distinctId);
  }

  /** Links `alias` to the distinct id. */
  alias(
    alias: string,
    options?: DistinctIdOptions,
    scope: Scope | undefined = this.context.current(),
  ): void {
    const client = this.client;
    const id = options?.distinctId ?? scope?.distinctId;
    if (!client || !this.requireId(id, 'alias')) return;
    client.alias({ distinctId: id, alias });
  }

  /** Sets a group's properties. */
  groupIdentify(
    groupType: string,
    groupKey: string | number,
    options?: GroupIdentifyOptions,
  ): void {
    this.client?.groupIdentify({
      groupType,
      groupKey: String(groupKey),
      properties: options?.properties,
      distinctId: options?.distinctId ?? this.context.current()?.distinctId,
    });
  }

  // ----- feature flags -----

  /** Whether a flag is on for the context's (or the given) user. False when unknown. */
  async featureEnabled(
    key: string,
    options?: FlagOptions,
    scope: Scope | undefined = this.context.current(),
  ) {
    const value = await this.getFeatureFlag(key, options, scope);
    return value !== undefined && value !== false;
  }

  /** A flag's value: true/false, a variant, or undefined when it cannot be evaluated. */
  async getFeatureFlag(
    key: string,
    options?: FlagOptions,
    scope: Scope | undefined = this.context.current(),
  ): Promise<FlagValue | undefined> {
    const result = await this.getFeatureFlagResult(key, options, scope);
    if (!result) return undefined;
    return result.enabled ? (result.variant ?? true) : false;
  }

  /** A flag's value, variant, payload and reason. */
  async getFeatureFlagResult(
    key: string,
    options?: FlagOptions,
    scope: Scope | undefined = this.context.current(),
  ): Promise<FlagResult | undefined> {
    const client = this.client;
    if (!client) return undefined;
    const distinctId = options?.distinctId ?? scope?.distinctId;
    if (!this.requireId(distinctId, 'flag look-up')) return undefined;
    const flagOptions = this.flagOptions(options, scope);
    const evaluate = async () => {
      const failuresBefore = this.transport.flagFailures;
      const result = await client.getFeatureFlagResult(key, distinctId, flagOptions);
      const failed = this.transport.flagFailures > failuresBefore;
      if (result === undefined && failed) {
        this.errors.foreground(
          'flags',
          undefined,
          `flag "${key}": PostHog could not be asked (see the previous error); answering undefined`,
        );
      }
      return { result, failed };
    };
    const flags = this.flags;
    const result = flags
      ? await flags.evaluate(
          { key, distinctId, inputs: flagOptions, deviceId: scope?.deviceId },
          flagOptions.sendFeatureFlagEvents,
          evaluate,
        )
      : (await evaluate()).result;
    return result as FlagResult | undefined;
  }

  /** A flag's payload, without recording `$feature_flag_called`. */
  async getFeatureFlagPayload(
    key: string,
    options?: FlagOptions,
    scope: Scope | undefined = this.context.current(),
  ): Promise<JsonValue | undefined> {
    const result = await this.getFeatureFlagResult(
      key,
      { ...options, sendFeatureFlagEvents: false },
      scope,
    );
    return result?.payload;
  }

  /** Every flag's value for the user. */
  async getAllFlags(
    options?: FlagOptions,
    scope: Scope | undefined = this.context.current(),
  ): Promise<Record<string, FlagValue>> {
    return (await this.getAllFlagsAndPayloads(options, scope)).featureFlags;
  }

  /** Every flag's value and payload for the user. */
  async getAllFlagsAndPayloads(
    options?: FlagOptions,
    scope: Scope | undefined = this.context.current(),
  ): Promise<{
    featureFlags: Record<string, FlagValue>;
    featureFlagPayloads: Record<string, JsonValue>;
  }> {
    const client = this.client;
    const distinctId = options?.distinctId ?? scope?.distinctId;
    if (!client || !this.requireId(distinctId, 'flag look-up')) {
      return { featureFlags: {}, featureFlagPayloads: {} };
    }
    const result = await client.getAllFlagsAndPayloads(
      distinctId,
      this.flagOptions(options, scope),
    );
    return {
      featureFlags: (result.featureFlags ?? {}) as Record<string, FlagValue>,
      featureFlagPayloads: (result.featureFlagPayloads ?? {}) as Record<string, JsonValue>,
    };
  }

  // ----- lifecycle -----

  /** Sends queued events now; a failure goes through the error mode (`raise` throws). */
  async flush(): Promise<void> {
    const client = this.client;
    if (!client) return;
    try {
      await client.flush();
    } catch (error) {
      this.errors.foreground('flush', error);
    }
  }

  /**
   * Flushes and stops the client. Never takes longer than `timeoutMs`: what is not
   * sent by then is dropped and reported through the error mode.
   */
  shutdown(timeoutMs: number = DEFAULT_SHUTDOWN_TIMEOUT_MS): Promise<void> {
    this.shutdownPromise ??= this.doShutdown(timeoutMs);
    return this.shutdownPromise;
  }

  private async doShutdown(timeoutMs: number): Promise<void> {
    teardownExceptions(this);
    const client = this.client;
    if (!client) return;
    let failure: unknown;
    const stopListening = client.on('error', (error: unknown) => {
      failure ??= error;
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
      (timer as { unref?: () => void }).unref?.();
    });
    try {
      // posthog-node gets a little longer than we wait, so our timer is what decides a timeout.
      const outcome = await Promise.race([
        client
          .shutdown(timeoutMs + 1_000)
          .then(
            () => 'done' as const,
            (error: unknown) => {
              failure ??= error;
              return 'done' as const;
            },
          )
          // After posthog-node released the flag lease: a Redis connection the kit opened.
          .then(async (done) => {
            await this.flags?.close();
            return done;
          }),
        timedOut,
      ]);
      if (outcome === 'timeout') {
        void this.flags?.close();
        failure ??= new Error(`timed out after ${timeoutMs} ms; unsent events were dropped`);
      }
    } finally {
      clearTimeout(timer);
      stopListening();
    }
    if (failure !== undefined) this.errors.foreground('shutdown', failure);
  }

  // ----- internals -----

  /** Tags, session and device of the scope, then the explicit properties (which win). */
  private properties(scope: Scope | undefined, explicit: Properties | undefined): Properties {
    if (!scope) return explicit ?? {};
    const properties: Properties = scope.tags;
    const sessionId = scope.sessionId;
    if (sessionId !== undefined) properties.$session_id = sessionId;
    const deviceId = scope.deviceId;
    if (deviceId !== undefined) properties.$device_id = deviceId;
    return explicit ? Object.assign(properties, explicit) : properties;
  }

  private message(event: string, options: CaptureOptions | undefined, scope: Scope | undefined) {
    return {
      event,
      distinctId: (options?.distinctId ?? scope?.distinctId) as string,
      properties: this.properties(scope, options?.properties),
      groups: options?.groups ?? scope?.groups,
      timestamp: options?.timestamp,
      uuid: options?.uuid,
      sendFeatureFlags: options?.sendFeatureFlags,
      disableGeoip: options?.disableGeoip ?? this.settings.disableGeoip,
    };
  }

  private personEvent(
    kind: '$set' | '$set_once',
    properties: Properties,
    distinctId: string | undefined,
  ) {
    const client = this.client;
    if (!client || !this.requireId(distinctId, kind)) return;
    client.capture({ distinctId, event: '$set', properties: { [kind]: properties } });
  }

  private flagOptions(options: FlagOptions | undefined, scope: Scope | undefined) {
    const deviceId = scope?.deviceId;
    const personProperties =
      deviceId === undefined
        ? options?.personProperties
        : { $device_id: deviceId, ...options?.personProperties };
    return {
      groups: stringGroups(options?.groups ?? scope?.groups),
      personProperties: personProperties as Record<string, string> | undefined,
      groupProperties: options?.groupProperties as
        | Record<string, Record<string, string>>
        | undefined,
      onlyEvaluateLocally: options?.onlyEvaluateLocally,
      sendFeatureFlagEvents: options?.sendFeatureFlagEvents,
      disableGeoip: options?.disableGeoip ?? this.settings.disableGeoip,
    };
  }

  private requireId(distinctId: string | undefined, what: string): distinctId is string {
    if (distinctId !== undefined && distinctId !== '') return true;
    this.errors.debug(`${what} skipped: no distinct id given and none in the context`);
    return false;
  }
}

function stringGroups(groups: Groups | undefined): Record<string, string> | undefined {
  if (!groups) return undefined;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(groups)) out[k] = String(val);
  return out;
}

/** Creates a kit from code options and the environment (parsed once, here). */
export function createPostHogKit(options?: PostHogKitOptions): PostHogKit {
  return new PostHogKit(options);
}

// Process-wide state lives on globalThis so an ESM and a CJS copy of core share it.
const GLOBAL_KEY = Symbol.for('posthog-kit.core.v1');
interface GlobalState {
  kit: PostHogKit | undefined;
  store: ContextStore | undefined;
}
const holder = globalThis as Record<symbol, GlobalState | undefined>;
const globalState: GlobalState = holder[GLOBAL_KEY] ?? { kit: undefined, store: undefined };
holder[GLOBAL_KEY] = globalState;

/** The context store every kit shares unless given its own storage. */
export function sharedContextStore(): ContextStore {
  globalState.store ??= new ContextStore(defaultContextStorage<Scope>().storage);
  return globalState.store;
}

/** @internal */
export function defaultKitState(): GlobalState {
  return globalState;
}
