// The module: the kit and a RequestTracker from the options (at injection time, so
// forRootAsync's factory can read configuration), the kit as a provider (a test's override
// is what the requests report to), the middleware on every route, the interceptor app-wide,
// and the kit's shutdown in Nest's own lifecycle.
import type { IncomingMessage } from 'node:http';
import {
  type DynamicModule,
  type FactoryProvider,
  Inject,
  type MiddlewareConsumer,
  type ModuleMetadata,
  type NestModule,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import {
  getKit,
  type MiddlewareOptions,
  PostHogKit,
  RequestTracker,
  requestOptions,
  resetKit,
} from '@posthog-kit/core';
import { RequestInterceptor, requestMiddleware } from './request.ts';

/**
 * Options of `PostHogModule.forRoot()`: a kit, or settings for the default kit (else the
 * environment's `POSTHOG_*`), plus request options. Hooks get Node's request as `req.raw`
 * (Express's `req` on Express).
 */
export type PostHogModuleOptions = MiddlewareOptions<IncomingMessage>;

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

/** What the options made: their tracker, and whether its kit came from settings or the environment. */
interface Made {
  options: PostHogModuleOptions;
  tracker: Tracker;
  /** The default kit, made from settings or the environment: the module shuts it down. */
  ownsKit: boolean;
}

const MADE = Symbol('posthog-kit.nestjs.made');
const TRACKER = Symbol('posthog-kit.nestjs.tracker');

function make(options: PostHogModuleOptions = {}): Made {
  const tracker = new RequestTracker<IncomingMessage>(options, 'PostHogModule');
  return { options, tracker, ownsKit: options.kit === undefined };
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
export class PostHogModule implements NestModule, OnApplicationShutdown {
  readonly #made: Made;
  readonly #tracker: Tracker;

  constructor(made: Made, tracker: Tracker) {
    this.#made = made;
    this.#tracker = tracker;
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

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(requestMiddleware(this.#tracker)).forRoutes('*');
  }

  /**
   * After Nest closed the server, so the last requests' events are queued: the kit the
   * module made is shut down (and forgotten, so the next app gets a fresh one); a kit you
   * gave (or a test's override) is flushed and stays yours.
   */
  async onApplicationShutdown(): Promise<void> {
    const used = this.#tracker.kit;
    const made = this.#made.tracker.kit;
    const flush = (kit: PostHogKit) =>
      kit.flush().catch((error: unknown) => kit.errors.background('flush', error));
    if (used !== made || !this.#made.ownsKit) await flush(used);
    if (!this.#made.ownsKit) return;
    // Core's signal hook may have shut it down at SIGTERM, while requests were finishing.
    const early = made.isShutdown;
    await (getKit() === made ? resetKit() : made.shutdown());
    if (early) await flush(made);
  }
}
Inject(MADE)(PostHogModule, undefined, 0);
Inject(TRACKER)(PostHogModule, undefined, 1);

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
      {
        provide: APP_INTERCEPTOR,
        useFactory: (tracker: Tracker) => new RequestInterceptor(tracker),
        inject: [TRACKER],
      },
    ],
    exports: [PostHogKit],
  };
}
