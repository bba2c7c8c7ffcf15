// The module: one RequestTracker built from the options (at injection time, so forRootAsync's
// factory can read configuration), the kit as a provider, the middleware on every route,
// the interceptor app-wide, and the kit's shutdown in Nest's own lifecycle.
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

interface ModuleState {
  tracker: RequestTracker<IncomingMessage>;
  /** The kit came from settings or the environment (the default kit): the module shuts it down. */
  ownsKit: boolean;
}

const STATE = Symbol('posthog-kit.nestjs.state');

function createState(options: PostHogModuleOptions = {}): ModuleState {
  const tracker = new RequestTracker<IncomingMessage>(options, 'PostHogModule');
  return { tracker, ownsKit: options.kit === undefined };
}

/**
 * PostHog for a Nest app, on Express or Fastify: `imports: [PostHogModule.forRoot()]`. Global:
 * `PostHogKit` is injectable everywhere.
 */
export class PostHogModule implements NestModule, OnApplicationShutdown {
  readonly #state: ModuleState;

  constructor(state: ModuleState) {
    this.#state = state;
  }

  /** Settings from code (else `POSTHOG_*`), or `{ kit }`, plus request options. */
  static forRoot(options?: PostHogModuleOptions): DynamicModule {
    return dynamicModule([], { provide: STATE, useFactory: () => createState(options) });
  }

  /** Options from a factory: `{ imports: [ConfigModule], useFactory: (config) => ..., inject: [ConfigService] }`. */
  static forRootAsync(options: PostHogModuleAsyncOptions): DynamicModule {
    const factory = options.useFactory as (
      ...args: unknown[]
    ) => ReturnType<typeof options.useFactory>;
    return dynamicModule(options.imports ?? [], {
      provide: STATE,
      useFactory: async (...args: unknown[]) => createState(await factory(...args)),
      inject: options.inject ?? [],
    });
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(requestMiddleware(this.#state.tracker)).forRoutes('*');
  }

  /**
   * After Nest closed the server, so the last requests' events are queued: the kit the
   * module made is shut down (and forgotten, so the next app gets a fresh one); a kit you
   * gave is flushed and stays yours.
   */
  async onApplicationShutdown(): Promise<void> {
    const { tracker, ownsKit } = this.#state;
    const kit = tracker.kit;
    if (!ownsKit) return kit.flush().catch((error) => kit.errors.background('flush', error));
    // Core's signal hook may have shut it down at SIGTERM, while requests were finishing.
    const early = kit.isShutdown;
    await (getKit() === kit ? resetKit() : kit.shutdown());
    if (early) await kit.flush().catch((error) => kit.errors.background('flush', error));
  }
}
Inject(STATE)(PostHogModule, undefined, 0);

function dynamicModule(
  imports: NonNullable<ModuleMetadata['imports']>,
  state: Omit<FactoryProvider<ModuleState | Promise<ModuleState>>, 'scope'>,
): DynamicModule {
  return {
    module: PostHogModule,
    global: true,
    imports,
    providers: [
      state,
      { provide: PostHogKit, useFactory: (s: ModuleState) => s.tracker.kit, inject: [STATE] },
      {
        provide: APP_INTERCEPTOR,
        useFactory: (s: ModuleState) => new RequestInterceptor(s.tracker),
        inject: [STATE],
      },
    ],
    exports: [PostHogKit],
  };
}
