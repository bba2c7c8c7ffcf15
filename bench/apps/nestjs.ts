// NestJS on Express (and, from nestjs-fastify.ts, on Fastify). Decorators are called by
// hand: Node's type stripping runs this file as it is. posthog-node's rows use its own
// NestJS integration, `PostHogInterceptor` from posthog-node/nestjs, as its docs set it up.
import 'reflect-metadata';
import type { Server } from 'node:http';
import {
  Controller,
  Get,
  type INestApplication,
  Module,
  type NestMiddleware,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { PostHogModule } from '@posthog-kit/nestjs';
import type { PostHog } from 'posthog-node';
import { PostHogInterceptor } from 'posthog-node/nestjs';
import { type Config, floorStorage, ourKit, ourWork, theirClient, theirWork } from './common.ts';

/** The controller of every configuration: bare's handler unless the configuration does work. */
function controllerFor(work: (() => Promise<string>) | undefined) {
  class HelloController {
    hello(): string | Promise<string> {
      return work ? work() : 'hello';
    }
  }
  const proto = HelloController.prototype;
  Get('hello')(
    proto,
    'hello',
    Object.getOwnPropertyDescriptor(proto, 'hello') as PropertyDescriptor,
  );
  Controller()(HelloController);
  return HelloController;
}

export async function startOn(
  platform: 'express' | 'fastify',
  config: Config,
  port: number,
): Promise<Server> {
  let client: PostHog | undefined;
  const imports: unknown[] = [];
  let work: (() => Promise<string>) | undefined;
  if (config === 'context' || config === 'work') {
    imports.push(PostHogModule.forRoot({ kit: await ourKit() }));
    if (config === 'work') work = ourWork;
  } else if (config === 'posthog-context' || config === 'posthog-work') {
    const theirs = await theirClient();
    client = theirs;
    if (config === 'posthog-work') work = () => theirWork(theirs);
  }
  class AppModule {
    configure(consumer: { apply(fn: NestMiddleware['use']): { forRoutes(path: string): void } }) {
      if (config === 'als-floor') {
        consumer.apply((_req, _res, next) => floorStorage.run({ n: 1 }, next)).forRoutes('*');
      }
    }
  }
  Module({ imports: imports as never[], controllers: [controllerFor(work)] })(AppModule);
  const adapter = platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter();
  const app: INestApplication = await NestFactory.create(AppModule, adapter, { logger: false });
  if (client)
    app.useGlobalInterceptors(new PostHogInterceptor(client, { captureExceptions: true }));
  await app.listen(port, '127.0.0.1');
  return app.getHttpServer() as Server;
}

export const start = (config: Config, port: number) => startOn('express', config, port);
