import {
  type ArgumentsHost,
  Body,
  type CallHandler,
  type CanActivate,
  Catch,
  Controller,
  type ExceptionFilter,
  type ExecutionContext,
  ForbiddenException,
  Get,
  HttpException,
  Injectable,
  type MiddlewareConsumer,
  Module,
  type NestInterceptor,
  type NestModule,
  NotFoundException,
  Param,
  type PipeTransform,
  Post,
  ServiceUnavailableException,
  UseFilters,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common';
import { AbstractHttpAdapter, APP_FILTER, HttpAdapterHost } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { flag, type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  capture,
  captureException,
  featureEnabled,
  getPostHog,
  PostHog,
  type PostHogHandle,
  type PostHogKit,
  PostHogModule,
  type PostHogModuleOptions,
} from '../src/index.ts';
import { emulatorKit, exceptionValue, listen, platforms, sleep } from './helpers.ts';

let emulator: PostHogEmulator;
let kit: PostHogKit;

beforeAll(async () => {
  emulator = await startEmulator({ flags: [flag('beta', { rollout: 100 })] });
});
afterAll(() => emulator.close());
beforeEach(() => {
  emulator.reset();
  kit = emulatorKit(emulator);
  return () => kit.shutdown(1_000);
});

const events = async () => {
  await kit.flush();
  return emulator.events;
};

// ----- an app with every place a Nest app runs code in a request -----

@Injectable()
class Greeter {
  // A service: the sugar, no injection.
  greet(): string {
    capture('service_event');
    return 'hi';
  }
}

/** Passport's way: the user on the platform's request, from a guard. */
@Injectable()
class AuthGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<{ headers: Record<string, string> }>();
    const user = req.headers['x-test-user'];
    if (user) (req as { user?: unknown }).user = JSON.parse(user);
    capture('guard_event');
    return true;
  }
}

/** The handle in a guard: `getPostHog(request)`. */
@Injectable()
class SlotGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    getPostHog(context.switchToHttp().getRequest()).capture('guard_slot');
    return true;
  }
}

@Injectable()
class AppInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler) {
    capture('interceptor_event');
    return next.handle();
  }
}

/** Errors before the handler: a guard's, an interceptor's (a middleware's is in the module). */
class ThrowingGuard implements CanActivate {
  canActivate(): boolean {
    throw new Error('guard boom');
  }
}

class ForbiddingGuard implements CanActivate {
  canActivate(): boolean {
    throw new ForbiddenException('no');
  }
}

class ThrowingInterceptor implements NestInterceptor {
  intercept(): never {
    throw new Error('interceptor boom');
  }
}

class CapturePipe implements PipeTransform {
  transform(value: unknown) {
    capture('pipe_event');
    return value;
  }
}

/** Answers every error 200: the app's filter that swallows errors (and captures Errors itself). */
@Catch()
class SwallowFilter implements ExceptionFilter {
  readonly host: HttpAdapterHost;
  constructor(host: HttpAdapterHost) {
    this.host = host;
  }
  catch(error: unknown, args: ArgumentsHost) {
    // As apps do: their own capture of what is not an HTTP answer (ours already has it).
    if (error instanceof Error && !(error instanceof HttpException)) captureException(error);
    capture('filter_event');
    const res = args.switchToHttp().getResponse();
    this.host.httpAdapter.reply(res, { swallowed: String(error) }, 200);
  }
}

@Catch(Error)
class TeapotFilter implements ExceptionFilter {
  readonly host: HttpAdapterHost;
  constructor(host: HttpAdapterHost) {
    this.host = host;
  }
  catch(error: Error, args: ArgumentsHost) {
    const res = args.switchToHttp().getResponse();
    this.host.httpAdapter.reply(res, { teapot: error.message }, 418);
  }
}

@Controller()
@UseGuards(AuthGuard)
@UseInterceptors(AppInterceptor)
class AppController {
  readonly greeter: Greeter;
  constructor(greeter: Greeter) {
    this.greeter = greeter;
  }

  @Get('items/:id')
  item(@Param('id', CapturePipe) id: string) {
    capture('handler_event', { properties: { id } });
    return { id, greeting: this.greeter.greet() };
  }

  @Post('orders')
  async order(@Body() body: Record<string, unknown>) {
    await sleep(5);
    capture('order_event', { properties: { keys: Object.keys(body).join(',') } });
    return { ok: true };
  }

  @Get('boom')
  boom() {
    throw new Error('boom');
  }

  @Get('boom/404')
  missing() {
    throw new NotFoundException('missing');
  }

  @Get('boom/503')
  down() {
    throw new ServiceUnavailableException('down');
  }

  @Get('boom/string')
  async string() {
    await sleep(1);
    throw 'a thrown string';
  }

  @Get('boom/guard')
  @UseGuards(ThrowingGuard)
  guarded() {
    return 'never';
  }

  @Get('boom/forbidden')
  @UseGuards(ForbiddingGuard)
  forbidden() {
    return 'never';
  }

  @Get('boom/interceptor')
  @UseInterceptors(ThrowingInterceptor)
  intercepted() {
    return 'never';
  }

  @Get('boom/middleware')
  middleware() {
    return 'never';
  }
}

/** Flags: a guard reads one, the handler's event carries it. */
@Injectable()
class BetaGuard implements CanActivate {
  async canActivate(): Promise<boolean> {
    return featureEnabled('beta');
  }
}

@Controller('beta')
@UseGuards(BetaGuard)
class BetaController {
  @Get()
  beta() {
    capture('beta_used');
    return { beta: true };
  }
}

/** The request's handle: `@PostHog()` in a handler, `getPostHog(req)` in a guard. */
@Controller('slot')
@UseGuards(SlotGuard)
class SlotController {
  @Get(':id')
  item(@Param('id') id: string, @PostHog() posthog: PostHogHandle) {
    posthog.capture('handler_slot', { properties: { id } });
    return { id, distinctId: posthog.distinctId ?? null };
  }
}

@Controller('filtered')
@UseFilters(TeapotFilter)
class FilteredController {
  @Get('boom')
  boom() {
    throw new Error('filtered boom');
  }
}

/** Every way a request of the app fails: 5xx, 4xx, thrown values, from every place. */
const ERROR_PATHS = [
  '/boom',
  '/boom/404',
  '/boom/503',
  '/boom/string',
  '/boom/guard',
  '/boom/forbidden',
  '/boom/interceptor',
  '/boom/middleware',
  '/filtered/boom',
];

function appModule(posthog: PostHogModuleOptions | false, extra: { appFilter?: boolean } = {}) {
  @Module({
    imports: posthog ? [PostHogModule.forRoot(posthog)] : [],
    controllers: [
      AppController,
      FilteredController,
      ...(posthog ? [SlotController, BetaController] : []),
    ],
    providers: [
      Greeter,
      ...(extra.appFilter ? [{ provide: APP_FILTER, useClass: SwallowFilter }] : []),
    ],
  })
  class AppModule implements NestModule {
    configure(consumer: MiddlewareConsumer) {
      // The app's own middleware, after ours.
      consumer
        .apply((_req: unknown, _res: unknown, next: () => void) => {
          capture('middleware_event');
          next();
        })
        .forRoutes('*');
      consumer
        .apply(() => {
          throw new Error('middleware boom');
        })
        .forRoutes('boom/middleware');
    }
  }
  return AppModule;
}

describe.each(platforms)('Nest on $name', (platform) => {
  it('the context holds in request hooks, app.use() and Nest middleware, guards, interceptors, pipes, handlers, services and filters', async () => {
    const { app, url } = await listen(appModule({ kit }), platform, (a) => {
      a.useGlobalFilters(new SwallowFilter(a.get(HttpAdapterHost)));
      // A request hook of the app's own: it still runs, inside the request's context.
      // AbstractHttpAdapter's method; getHttpAdapter() is typed as the narrower HttpServer.
      const adapter = a.getHttpAdapter() as unknown as {
        setOnRequestHook(hook: (req: unknown, res: unknown, done: () => void) => void): void;
      };
      adapter.setOnRequestHook((_req: unknown, _res: unknown, done: () => void) => {
        capture('app_hook_event');
        done();
      });
      // Middleware of the platform, before Nest's own.
      a.use((_req: unknown, _res: unknown, next: () => void) => {
        capture('app_use_event');
        next();
      });
    });
    try {
      const headers = { 'x-posthog-distinct-id': 'nest-user', 'x-posthog-session-id': 's-1' };
      expect(await (await fetch(`${url}/items/7?tab=1`, { headers })).json()).toEqual({
        id: '7',
        greeting: 'hi',
      });
      await fetch(`${url}/boom`, { headers });
      expect(await (await fetch(`${url}/slot/7?tab=1`, { headers })).json()).toEqual({
        id: '7',
        distinctId: 'nest-user',
      });
      const all = await events();
      const names = [
        'app_hook_event',
        'app_use_event',
        'middleware_event',
        'guard_event',
        'guard_slot',
        'interceptor_event',
        'pipe_event',
        'handler_slot',
        'handler_event',
        'service_event',
      ];
      for (const name of names) {
        const event = all.find((e) => e.event === name);
        expect({ name, distinctId: event?.distinctId }).toEqual({ name, distinctId: 'nest-user' });
        const path = name.endsWith('_slot') ? '/slot/7' : '/items/7';
        expect(event?.properties).toMatchObject({
          $session_id: 's-1',
          $request_method: 'GET',
          $request_path: path,
          $current_url: `${url}${path}?tab=1`,
        });
        expect(String(event?.properties.$ip)).toMatch(/127\.0\.0\.1/);
      }
      const filtered = all.find((e) => e.event === 'filter_event');
      expect(filtered).toMatchObject({
        distinctId: 'nest-user',
        properties: { $request_path: '/boom' },
      });
    } finally {
      await app.close();
    }
  });

  it('a POST body: the context is still the request after the body is parsed', async () => {
    const { app, url } = await listen(appModule({ kit }), platform);
    try {
      const res = await fetch(`${url}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-posthog-distinct-id': 'buyer' },
        body: JSON.stringify({ sku: 'a', n: 2 }),
      });
      expect(res.status).toBe(201);
      const event = (await events()).find((e) => e.event === 'order_event');
      expect(event).toMatchObject({
        distinctId: 'buyer',
        properties: { keys: 'sku,n', $request_method: 'POST', $request_path: '/orders' },
      });
    } finally {
      await app.close();
    }
  });

  it("the user a guard sets on the platform's request gives the distinct id and the email", async () => {
    const { app, url } = await listen(appModule({ kit }), platform);
    try {
      const user = JSON.stringify({ id: 'u-42', email: 'ada@example.com' });
      await fetch(`${url}/items/1`, { headers: { 'x-test-user': user } });
      const handler = (await events()).find((e) => e.event === 'handler_event');
      expect(handler).toMatchObject({
        distinctId: 'u-42',
        properties: { email: 'ada@example.com' },
      });
    } finally {
      await app.close();
    }
  });

  it('errors: 5xx and non-HTTP captured once, from handlers, guards, interceptors and middleware, HttpException below 500 not, whatever the filters', async () => {
    const setups: Array<[string, PostHogModuleOptions, { appFilter?: boolean }, boolean]> = [
      ["Nest's own filter", { kit }, {}, false],
      ['a global catch-all filter that answers 200', { kit }, {}, true],
      ['an APP_FILTER that answers 200', { kit }, { appFilter: true }, false],
    ];
    for (const [what, options, extra, globalFilter] of setups) {
      emulator.reset();
      const { app, url } = await listen(appModule(options, extra), platform, (a) => {
        if (globalFilter) a.useGlobalFilters(new SwallowFilter(a.get(HttpAdapterHost)));
      });
      try {
        const headers = { 'x-posthog-distinct-id': 'err-user' };
        for (const path of ERROR_PATHS) await fetch(`${url}${path}`, { headers });
        const exceptions = (await events()).filter((e) => e.event === '$exception');
        const seen = exceptions.map((e) => [
          exceptionValue(e),
          e.properties.$response_status_code,
          e.distinctId,
        ]);
        expect({ what, seen: seen.sort() }).toEqual({
          what,
          seen: [
            ['a thrown string', 500, 'err-user'],
            ['boom', 500, 'err-user'],
            ['down', 503, 'err-user'],
            ['filtered boom', 500, 'err-user'],
            ['guard boom', 500, 'err-user'],
            ['interceptor boom', 500, 'err-user'],
            ['middleware boom', 500, 'err-user'],
          ],
        });
        const list = exceptions[0]?.properties.$exception_list as Array<{
          mechanism?: object;
        }>;
        expect(list[0]?.mechanism).toMatchObject({ type: 'middleware', handled: false });
      } finally {
        await app.close();
      }
    }
  });

  it("Nest's responses are the same with and without the module: status, headers, body", async () => {
    for (const appFilter of [false, true]) {
      const bare = await listen(appModule(false, { appFilter }), platform);
      const withKit = await listen(appModule({ kit, captureViews: true }, { appFilter }), platform);
      try {
        for (const path of ['/items/3', ...ERROR_PATHS, '/no/such/route']) {
          const [a, b] = await Promise.all([fetch(bare.url + path), fetch(withKit.url + path)]);
          const headers = (r: Response) => {
            const out: Record<string, string> = {};
            r.headers.forEach((v, k) => {
              if (!['date', 'keep-alive', 'connection'].includes(k)) out[k] = v;
            });
            return out;
          };
          expect({ path, status: b.status, body: await b.text(), headers: headers(b) }).toEqual({
            path,
            status: a.status,
            body: await a.text(),
            headers: headers(a),
          });
        }
      } finally {
        await bare.app.close();
        await withKit.app.close();
      }
    }
  });

  it('a flag read in a guard: asked with the request ids, carried by the events of the request', async () => {
    const { app, url } = await listen(appModule({ kit }), platform);
    try {
      const res = await fetch(`${url}/beta`, { headers: { 'x-posthog-distinct-id': 'tester' } });
      expect(await res.json()).toEqual({ beta: true });
      const all = await events();
      expect(all.find((e) => e.event === '$feature_flag_called')).toMatchObject({
        distinctId: 'tester',
        properties: { $feature_flag: 'beta', $request_path: '/beta' },
      });
      expect(all.find((e) => e.event === 'beta_used')?.properties).toMatchObject({
        '$feature/beta': true,
        $active_feature_flags: ['beta'],
      });
    } finally {
      await app.close();
    }
  });

  it('view capture: one event per request with the status and the route pattern', async () => {
    const { app, url } = await listen(appModule({ kit, captureViews: true }), platform);
    try {
      await fetch(`${url}/items/9`, { headers: { 'x-posthog-distinct-id': 'viewer' } });
      await fetch(`${url}/boom/404`, { headers: { 'x-posthog-distinct-id': 'viewer' } });
      const views = (await events()).filter((e) => e.event === '$pageview');
      expect(
        views.map((e) => [e.properties.$response_status_code, e.properties.$request_route]),
      ).toEqual([
        [200, '/items/:id'],
        [404, '/boom/404'],
      ]);
    } finally {
      await app.close();
    }
  });

  it('requestFilter false: no events, the handler still runs, the handle is a no-op', async () => {
    const { app, url } = await listen(appModule({ kit, requestFilter: () => false }), platform);
    try {
      expect((await fetch(`${url}/items/2`)).status).toBe(200);
      expect((await fetch(`${url}/boom`)).status).toBe(500);
      expect(await events()).toEqual([]);
    } finally {
      await app.close();
    }
  });
});

it('an HTTP adapter without a request hook: the context from a Nest middleware, errors still captured', async () => {
  // Another platform's adapter: AbstractHttpAdapter's no-op request hook.
  class HooklessAdapter extends ExpressAdapter {
    override setOnRequestHook = AbstractHttpAdapter.prototype.setOnRequestHook;
  }
  const platform = { name: 'Express' as const, adapter: () => new HooklessAdapter() };
  const { app, url } = await listen(appModule({ kit }), platform);
  try {
    const headers = { 'x-posthog-distinct-id': 'hookless' };
    expect((await fetch(`${url}/items/5`, { headers })).status).toBe(200);
    expect((await fetch(`${url}/boom/guard`, { headers })).status).toBe(500);
    const all = await events();
    for (const name of ['middleware_event', 'guard_event', 'handler_event', '$exception']) {
      const event = all.find((e) => e.event === name);
      expect({ name, distinctId: event?.distinctId }).toEqual({ name, distinctId: 'hookless' });
    }
    expect(exceptionValue(all.find((e) => e.event === '$exception') as never)).toBe('guard boom');
  } finally {
    await app.close();
  }
});

it('getPostHog(request) outside the module says what to do', () => {
  expect(() => getPostHog({ headers: {} })).toThrow(
    /no PostHog handle on this request; import PostHogModule.forRoot\(\)/,
  );
});
