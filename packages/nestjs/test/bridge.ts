// The bridges the conformance and reliability suites drive this adapter through: one Nest
// app per spec, on Express or on Fastify. Decorators are called by hand (the routes come
// from the spec), so no decorator metadata is needed.
import { Readable } from 'node:stream';
import {
  type ArgumentsHost,
  Body,
  type CanActivate,
  Catch,
  Controller,
  type ExecutionContext,
  Get,
  HttpException,
  Inject,
  Injectable,
  Module,
  NotFoundException,
  Param,
  Post,
  Req,
  Res,
  StreamableFile,
} from '@nestjs/common';
import { APP_FILTER, APP_GUARD, BaseExceptionFilter, HttpAdapterHost } from '@nestjs/core';
import type { AdapterBridge, RouteSpec } from '@posthog-kit/conformance';
import { getPostHog, PostHogModule } from '../src/index.ts';
import { listen, type Platform, platforms } from './helpers.ts';

/** The fake auth of the suite, the way Passport's AuthGuard does it: `user` on the platform's request. */
class TestUserGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<{ headers: Record<string, string> }>();
    const user = req.headers['x-test-user'];
    if (user) (req as { user?: unknown }).user = JSON.parse(user);
    return true;
  }
}
Injectable()(TestUserGuard);

/** The app's filter: an error's own status (`status` 4xx/5xx) is answered, as Express does; the rest is Nest's. */
class StatusFilter extends BaseExceptionFilter {
  override catch(error: unknown, host: ArgumentsHost) {
    const status = (error as { status?: unknown } | null)?.status;
    if (error instanceof HttpException || typeof status !== 'number' || status < 400) {
      return super.catch(error, host);
    }
    const body = { statusCode: status, message: (error as Error).message };
    this.httpAdapterHost?.httpAdapter.reply(host.switchToHttp().getResponse(), body, status);
  }
}
Catch()(StatusFilter);

async function* slowly(chunks: string[]) {
  for (const chunk of chunks) {
    yield chunk;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const decorate = (proto: object, key: string, decorators: MethodDecorator[]) => {
  const descriptor = Object.getOwnPropertyDescriptor(proto, key) as PropertyDescriptor;
  for (const d of decorators) d(proto, key, descriptor);
  Object.defineProperty(proto, key, descriptor);
};

/** One controller method per route of the spec. */
function controllerOf(routes: RouteSpec[], withSlot: boolean) {
  class SpecController {
    readonly host: HttpAdapterHost;
    constructor(host: HttpAdapterHost) {
      this.host = host;
    }
  }
  Inject(HttpAdapterHost)(SpecController, undefined, 0);
  routes.forEach((route, i) => {
    const key = `route${i}`;
    Object.defineProperty(SpecController.prototype, key, {
      configurable: true,
      writable: true,
      async value(
        this: SpecController,
        req: object,
        params: Record<string, string>,
        body: unknown,
        res: object,
      ) {
        const out = await route.handler({
          posthog: withSlot ? getPostHog(req) : undefined,
          params,
          body: route.method === 'POST' ? body : undefined,
        });
        const adapter = this.host.httpAdapter;
        adapter.status(res, out.status ?? 200);
        for (const [k, v] of Object.entries(out.headers ?? {})) adapter.setHeader(res, k, v);
        if (out.stream) {
          return new StreamableFile(Readable.from(slowly(out.stream)), { type: 'text/plain' });
        }
        return out.body ?? null;
      },
    });
    const proto = SpecController.prototype;
    Req()(proto, key, 0);
    Param()(proto, key, 1);
    Body()(proto, key, 2);
    Res({ passthrough: true })(proto, key, 3);
    decorate(proto, key, [(route.method === 'GET' ? Get : Post)(route.path)]);
  });
  Controller()(SpecController);
  return SpecController;
}

function bridge(platform: Platform): AdapterBridge {
  return {
    name: `NestJS on ${platform.name}`,
    httpError: (status, message) =>
      status === 404 ? new NotFoundException(message) : new HttpException(message, status),
    async start({ posthog: options, routes }) {
      class AppModule {}
      Module({
        imports: options ? [PostHogModule.forRoot(options)] : [],
        controllers: [controllerOf(routes, options !== false)],
        providers: [
          { provide: APP_GUARD, useClass: TestUserGuard },
          { provide: APP_FILTER, useClass: StatusFilter },
        ],
      })(AppModule);
      const { app, url } = await listen(AppModule, platform);
      return { url, close: () => app.close() };
    },
  };
}

export const [nestExpressBridge, nestFastifyBridge] = platforms.map(bridge) as [
  AdapterBridge,
  AdapterBridge,
];
