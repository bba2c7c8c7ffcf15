import { createClient, kitPolls } from './client.ts';
import { ContextStore } from './context.ts';
import { describeError, ErrorReporter } from './errors.ts';
import { ExceptionPipeline } from './exception-pipeline.ts';
import { FlagCaches, type FlagsStatus, flagsStatus, redisSecrets } from './flags/index.ts';
import { sharedContextStore } from './global.ts';
import { apiParts, bindApi, captureExceptionIn, type KitParts, ScopedApi } from './operations.ts';
import { DefinitionsPoller } from './poller.ts';
import {
  disabledReason,
  type PostHogKitOptions,
  parseSettings,
  REQUEST_HOOKS,
  type ResolvedSettings,
} from './settings.ts';
import { Transport } from './transport.ts';
import type { RequestHooks } from './types.ts';
import { validateSetup } from './validation.ts';

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 5_000;
// Said once per process: every kit made from the same environment would say the same.
let saidDisabled = false;

/**
 * One configured PostHog: settings, the posthog-node client (none when disabled: every
 * call is then a cheap no-op), the error mode and the context store. Its `PostHogApi`
 * methods use the current context. Create it once per process; call `shutdown()` before
 * the process ends (the default kit does it by itself, see "Shutdown" in the README).
 */
export class PostHogKit extends ScopedApi {
  readonly settings: ResolvedSettings;
  readonly errors: ErrorReporter;
  readonly context: ContextStore;
  /** The request hooks given in code (extraTags, requestFilter, ...). */
  readonly hooks: RequestHooks;
  /** Settles when startup validation is done and, with code variables on, the debugger is attached. */
  readonly ready: Promise<void>;
  /** The options the kit was made from. */
  readonly options: Readonly<PostHogKitOptions>;
  readonly #parts: KitParts;
  readonly #baseFetch: typeof fetch;
  #shutdown: Promise<void> | undefined;
  #poller: DefinitionsPoller | undefined;

  constructor(options: PostHogKitOptions = {}) {
    super();
    const settings = parseSettings(options);
    this.options = { ...options };
    this.settings = settings;
    this.errors = new ErrorReporter(settings.errorMode, options.logger, [
      settings.apiKey,
      settings.personalApiKey,
      ...redisSecrets(settings.redisUrl),
    ]);
    const context = options.contextStorage
      ? new ContextStore(options.contextStorage as ContextStore['storage'])
      : sharedContextStore();
    this.context = context;
    const disabled = settings.apiKey === undefined ? disabledReason(options) : undefined;
    if (disabled && !saidDisabled) {
      saidDisabled = true;
      this.errors.warn(disabled);
    }
    const hooks: RequestHooks = {};
    for (const name of REQUEST_HOOKS) {
      if (options[name] !== undefined) (hooks as Record<string, unknown>)[name] = options[name];
    }
    this.hooks = hooks;
    this.#baseFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    const errors = this.errors;
    const transport = new Transport(this.#baseFetch, errors, settings.host, settings.apiKey);
    const enabled = settings.enabled;
    const flags = enabled
      ? FlagCaches.create(settings, options.cache, errors, options.clientOptions)
      : undefined;
    const onFlagsStatus = options.onFlagsStatus;
    if (flags && onFlagsStatus) flags.onStatus(onFlagsStatus);
    const exceptions = new ExceptionPipeline(
      {
        settings,
        errors,
        kit: this,
        capture: (error, mechanism, scope) =>
          captureExceptionIn(this.#parts, scope, error, undefined, mechanism),
      },
      enabled,
    );
    const client = enabled
      ? createClient({
          settings,
          errors,
          transport,
          flags,
          exceptions,
          clientOptions: options.clientOptions,
        })
      : undefined;
    this.#parts = { client, settings, errors, transport, flags, exceptions };
    // Local evaluation with a personal key: the kit's own, unref'd poller. Shared definitions
    // keep posthog-node's (their lease follows its cadence), so call shutdown() there.
    if (client && settings.personalApiKey && kitPolls(flags, options.clientOptions)) {
      this.#poller = new DefinitionsPoller(
        () => client.reloadFeatureFlags(),
        settings.pollIntervalMs,
        () => transport.definitionsFailures,
      );
    }
    bindApi(this, this.#parts, () => context.current());
    this.ready =
      settings.validateOnStartup && client
        ? Promise.all([this.#startupValidation(), exceptions.ready]).then(() => {})
        : exceptions.ready;
  }

  /** Whether events are sent (a project key is set and the kit is not turned off). */
  get enabled(): boolean {
    return this.#parts.client !== undefined;
  }

  /** The posthog-node client; undefined when the kit is disabled. */
  get client() {
    return this.#parts.client;
  }

  /** Events posthog-node dropped because its queue was full (`maxQueueSize`), since the kit started. */
  get droppedEvents(): number {
    return (this.#parts.client as { drops?: { count: number } } | undefined)?.drops?.count ?? 0;
  }

  /** The flag caches (shared definitions, result cache, memo) the settings asked for. @internal */
  get flags(): FlagCaches | undefined {
    return this.#parts.flags;
  }

  /**
   * Where the flag definitions in use came from (`leader`, `shared-store`, `own-fetch`,
   * `none`), their age, the leader's identity, the last error: for a health check or
   * metrics. `onFlagsStatus` gets the same on every change. See "Flags status".
   */
  flagsStatus(): FlagsStatus {
    return (
      this.#parts.flags?.status() ?? flagsStatus(undefined, this.settings.flagDefinitionsSource)
    );
  }

  #startupValidation(): Promise<void> {
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
    const problem = await validateSetup(this.settings, this.#baseFetch);
    if (problem) this.errors.foreground('validation', new Error(problem), problem);
  }

  /**
   * Flushes and stops the client. Never takes longer than `timeoutMs`: what is not
   * sent by then is dropped and reported through the error mode.
   */
  shutdown(timeoutMs: number = DEFAULT_SHUTDOWN_TIMEOUT_MS): Promise<void> {
    this.#shutdown ??= this.#doShutdown(timeoutMs);
    return this.#shutdown;
  }

  /** Whether `shutdown()` was called. */
  get isShutdown(): boolean {
    return this.#shutdown !== undefined;
  }

  async #doShutdown(timeoutMs: number): Promise<void> {
    const { client, flags, exceptions } = this.#parts;
    exceptions.close();
    this.#poller?.stop();
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
            await flags?.close();
            return done;
          }),
        timedOut,
      ]);
      if (outcome === 'timeout') {
        void flags?.close();
        failure ??= new Error(`timed out after ${timeoutMs} ms; unsent events were dropped`);
      }
    } finally {
      clearTimeout(timer);
      stopListening();
    }
    if (failure !== undefined) this.errors.foreground('shutdown', failure);
  }
}

/** A kit's working parts (client, transport, flags, exceptions). @internal */
export function kitParts(kit: PostHogKit): KitParts {
  return apiParts(kit) as KitParts;
}

/** Creates a kit from code options and the environment (parsed once, here). */
export function createPostHogKit(options?: PostHogKitOptions): PostHogKit {
  return new PostHogKit(options);
}
