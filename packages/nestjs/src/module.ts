// The module: the kit and a RequestTracker from the options (at injection time, so
// forRootAsync's factory can read configuration), the kit as a provider (a test's override
// is what the requests report to), the HTTP adapter's request hook, errors reported from
// Nest's exception dispatch, and the kit flushed in Nest's own shutdown.
import type { IncomingMessage } from 'node:http';
import {
  type DynamicModule,
  type FactoryProvider,
  Inject,
  type MiddlewareConsumer,
  type ModuleMetadata,
  type NestModule,
  type OnApplicationShutdown,
  type OnModuleInit,
  Optional,
} from '@nestjs/common';
import { AbstractHttpAdapter, HttpAdapterHost } from '@nestjs/core';
import {
  flushWithin,
  type MiddlewareOptions,
  PostHogKit,
  RequestTracker,
  requestOptions,
} from '@posthog-kit/core';
import { type RequestHook, reportErrors, requestHook } from './request.ts';

/**
 * Options of `PostHogModule.forRoot()`: a kit, or settings for the default kit (else the
 * environment's `POSTHOG_*`), plus request options. Hooks get Node's request as `req.raw`
 * (Express's `req` on Express).
 */
export type PostHogModuleOptions = MiddlewareOptions<IncomingMessage> & {
  /**
   * How long Nest's shutdown waits for the kit to send what it queued (0: it does not wait).
   * @default 5000
   */
  closeTimeoutMs?: number | undefined;
};

/** Options of `PostHogModule.forRootAsync()`: the options from a factory with injected dependencies. */
export interface PostHogModuleAsyncOptions {
  /** Modules whose providers the factory injects (a config module). */
  imports?: ModuleMetadata['imports'];
  /** Returns the module's options; gets the `inject` tokens' values, in order. */
  useFactory: (...args: never[]) => PostHogModuleOptions | Promise<PostHogModuleOptions>;
  /**
   * What the factory gets.
   * @default []
   */
  inject?: FactoryProvider['inject'];
}

type Tracker = RequestTracker<IncomingMessage>;

/** What the options made: their tracker (and kit). */
interface Made {
  options: MiddlewareOptions<IncomingMessage>;
  tracker: Tracker;
  closeTimeoutMs: number;
}

const MADE = Symbol('posthog-kit.nestjs.made');
const TRACKER = Symbol('posthog-kit.nestjs.tracker');

function make({ closeTimeoutMs = 5000, ...options }: PostHogModuleOptions = {}): Made {
  const tracker = new RequestTracker<IncomingMessage>(options, 'PostHogModule');
  return { options, tracker, closeTimeoutMs };
}

/** The tracker the requests use: the options' own, unless the PostHogKit provider was overridden. */
const trackerFor = (made: Made, kit: PostHogKit): Tracker =>
  kit === made.tracker.kit
    ? made.tracker
    : new RequestTracker({ ...requestOptions(made.options), kit }, 'PostHogModule');

/**
 * PostHog for a Nest app, on Express or Fastify: `imports: [PostHogModule.forRoot()]`. Global:
 * `PostHogKit` is injectable everywhere.
 */
export class PostHogModule implements NestModule, OnModuleInit, OnApplicationShutdown {
  readonly #made: Made;
  readonly #tracker: Tracker;
  readonly #adapterHost: HttpAdapterHost | undefined;

  constructor(made: Made, tracker: Tracker, adapterHost: HttpAdapterHost | undefined) {
    this.#made = made;
    this.#tracker = tracker;
    this.#adapterHost = adapterHost;
  }

  /** Settings from code (else `POSTHOG_*`), or `{ kit }`, plus request options. */
  static forRoot(options?: PostHogModuleOptions): DynamicModule {
    return dynamicModule([], { provide: MADE, useFactory: () => make(options) });
  }

  /** Options from a factory: `{ imports: [ConfigModule], useFactory: (config) => ..., inject: [ConfigService] }`. */
  static forRootAsync(options: PostHogModuleAsyncOptions): DynamicModule {
    const factory = options.useFactory as (
      ...args: unknown[]
    ) => ReturnType<typeof options.useFactory>;
    return dynamicModule(options.imports ?? [], {
      provide: MADE,
      useFactory: async (...args: unknown[]) => make(await factory(...args)),
      inject: options.inject ?? [],
    });
  }

  /** The adapter's request hook, if it has one (Nest's own adapters do; the base class's is a no-op). */
  get #hooked(): AbstractHttpAdapter | undefined {
    const adapter = this.#adapterHost?.httpAdapter;
    const base = AbstractHttpAdapter.prototype.setOnRequestHook;
    return adapter && adapter.setOnRequestHook !== base ? adapter : undefined;
  }

  /**
   * An HTTP adapter without a request hook (another platform's) gets the context from a Nest
   * middleware on every route instead: from Nest's middleware on, not the platform's.
   */
  configure(consumer: MiddlewareConsumer): void {
    if (!this.#adapterHost?.httpAdapter || this.#hooked) return;
    const hook = requestHook(this.#tracker);
    consumer
      .apply((req: unknown, res: unknown, next: () => void) => hook(req, res, next))
      .forRoutes('*');
  }

  /**
   * The context starts in the HTTP adapter's request hook: before any middleware (app.use()'s
   * included), on Express and Fastify alike, for less than a Nest middleware costs. An app
   * without an HTTP server (a testing module, a microservice) has none.
   */
  onModuleInit(): void {
    reportErrors();
    const adapter = this.#hooked;
    if (!adapter) return;
    // A hook the app set first keeps running, inside the request's context.
    const previous = (adapter as unknown as { onRequestHook?: RequestHook }).onRequestHook;
    adapter.setOnRequestHook(requestHook(this.#tracker, previous));
  }

  /**
   * After Nest closed the server, so the last requests have captured what they capture
   * (after a SIGTERM too, when core's signal hook has already shut the default kit down):
   * what the kit queued is sent. A flush, not a shutdown, as core's `flushWithin` says why.
   */
  async onApplicationShutdown(): Promise<void> {
    const { tracker, closeTimeoutMs } = this.#made;
    if (closeTimeoutMs <= 0) return;
    // A test's override, and the default kit the settings made (the sugar outside requests).
    const kits = new Set([this.#tracker.kit, tracker.kit]);
    await Promise.all([...kits].map((kit) => flushWithin(kit, closeTimeoutMs)));
  }
}
Inject(MADE)(PostHogModule, undefined, 0);
Inject(TRACKER)(PostHogModule, undefined, 1);
Optional()(PostHogModule, undefined, 2);
Inject(HttpAdapterHost)(PostHogModule, undefined, 2);

function dynamicModule(
  imports: NonNullable<ModuleMetadata['imports']>,
  made: Omit<FactoryProvider<Made | Promise<Made>>, 'scope'>,
): DynamicModule {
  return {
    module: PostHogModule,
    global: true,
    imports,
    providers: [
      made,
      { provide: PostHogKit, useFactory: (m: Made) => m.tracker.kit, inject: [MADE] },
      { provide: TRACKER, useFactory: trackerFor, inject: [MADE, PostHogKit] },
    ],
    exports: [PostHogKit],
  };
}
