/**
 * Each adapter's README setup as a user writes it, importing from the adapter alone: an app
 * with `posthog()`, a route that captures and reads a flag, one request, then `shutdown()`.
 * Printed: the route's answer as JSON.
 */
export interface AdapterApp {
  /** The package folder, `packages/<name>`. */
  name: string;
  /** An export of the built adapter that says it is written (fastify and nestjs came later). */
  entry: string;
  /** Framework packages to install (versions from the adapter's devDependencies). */
  frameworks: string[];
  /** Type packages for the TypeScript check. */
  types: string[];
  /** The app, as ESM. */
  esm: (id: string) => string;
  /** The same app, as CommonJS. */
  cjs: (id: string) => string;
}

/** The request every app makes to itself, and what it does afterwards. */
const exercise = (id: string) => `
  const response = await fetch(url + '/signup', { headers: { 'x-posthog-distinct-id': '${id}' } });
  console.log(JSON.stringify({ status: response.status, body: await response.json() }));`;

const route = (format: string) =>
  `capture('signed_up', { properties: { format: '${format}' } });
    const v2 = await featureEnabled('new-dashboard');`;

const cjs = (imports: string, body: string) =>
  `${imports}\n(async () => {${body}\n})().catch((error) => { console.error(error); process.exit(1); });\n`;

export const APPS: AdapterApp[] = [
  {
    name: 'express',
    entry: 'posthogErrorHandler',
    frameworks: ['express'],
    types: ['@types/express'],
    esm: (
      id,
    ) => `import { capture, featureEnabled, posthog, posthogErrorHandler, shutdown } from '@posthog-kit/express';
import express from 'express';
${expressBody(id, 'esm')}`,
    cjs: (id) =>
      cjs(
        `const { capture, featureEnabled, posthog, posthogErrorHandler, shutdown } = require('@posthog-kit/express');
const express = require('express');`,
        expressBody(id, 'cjs'),
      ),
  },
  {
    name: 'koa',
    entry: 'posthog',
    frameworks: ['koa', '@koa/router'],
    types: ['@types/koa'],
    esm: (id) => `import Router from '@koa/router';
import { capture, featureEnabled, posthog, shutdown } from '@posthog-kit/koa';
import Koa from 'koa';
${koaBody(id, 'esm')}`,
    cjs: (id) =>
      cjs(
        `const Router = require('@koa/router');
const { capture, featureEnabled, posthog, shutdown } = require('@posthog-kit/koa');
const Koa = require('koa');`,
        koaBody(id, 'cjs'),
      ),
  },
  {
    name: 'hono',
    entry: 'getPostHog',
    frameworks: ['hono', '@hono/node-server'],
    types: [],
    esm: (id) => `import { serve } from '@hono/node-server';
import { capture, featureEnabled, posthog, shutdown } from '@posthog-kit/hono';
import { Hono } from 'hono';
${honoBody(id, 'esm')}`,
    cjs: (id) =>
      cjs(
        `const { serve } = require('@hono/node-server');
const { capture, featureEnabled, posthog, shutdown } = require('@posthog-kit/hono');
const { Hono } = require('hono');`,
        honoBody(id, 'cjs'),
      ),
  },
  {
    name: 'h3',
    entry: 'getPostHog',
    frameworks: ['h3'],
    types: [],
    esm: (id) => `import { capture, featureEnabled, posthog, shutdown } from '@posthog-kit/h3';
import { H3, serve } from 'h3';
${h3Body(id, 'esm')}`,
    cjs: (id) =>
      cjs(
        `const { capture, featureEnabled, posthog, shutdown } = require('@posthog-kit/h3');
const { H3, serve } = require('h3');`,
        h3Body(id, 'cjs'),
      ),
  },
  {
    name: 'fastify',
    entry: 'posthog',
    frameworks: ['fastify'],
    types: [],
    esm: (id) => `import { capture, featureEnabled, posthog, shutdown } from '@posthog-kit/fastify';
import Fastify from 'fastify';
${fastifyBody(id, 'esm')}`,
    cjs: (id) =>
      cjs(
        `const { capture, featureEnabled, posthog, shutdown } = require('@posthog-kit/fastify');
const Fastify = require('fastify');`,
        fastifyBody(id, 'cjs'),
      ),
  },
  {
    name: 'nestjs',
    entry: 'PostHogModule',
    frameworks: [
      '@nestjs/common',
      '@nestjs/core',
      '@nestjs/platform-express',
      'reflect-metadata',
      'rxjs',
    ],
    types: [],
    esm: (id) => `import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { capture, featureEnabled, PostHogModule, shutdown } from '@posthog-kit/nestjs';
${nestBody(id, 'esm')}`,
    cjs: (id) =>
      cjs(
        `require('reflect-metadata');
const { Controller, Get, Module } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { capture, featureEnabled, PostHogModule, shutdown } = require('@posthog-kit/nestjs');`,
        nestBody(id, 'cjs'),
      ),
  },
];

function expressBody(id: string, format: string) {
  return `
  const app = express();
  app.use(posthog());
  app.get('/signup', async (req, res) => {
    ${route(format)}
    res.json({ v2 });
  });
  app.use(posthogErrorHandler());
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = 'http://127.0.0.1:' + server.address().port;
  ${exercise(id)}
  server.close();
  server.closeAllConnections();
  await shutdown();`;
}

function koaBody(id: string, format: string) {
  return `
  const app = new Koa();
  app.use(posthog());
  const router = new Router();
  router.get('/signup', async (ctx) => {
    ${route(format)}
    ctx.body = { v2 };
  });
  app.use(router.routes());
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = 'http://127.0.0.1:' + server.address().port;
  ${exercise(id)}
  server.close();
  server.closeAllConnections();
  await shutdown();`;
}

function honoBody(id: string, format: string) {
  return `
  const app = new Hono();
  app.use(posthog());
  app.get('/signup', async (c) => {
    ${route(format)}
    return c.json({ v2 });
  });
  let server;
  const url = await new Promise((resolve) => {
    server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) =>
      resolve('http://127.0.0.1:' + info.port),
    );
  });
  ${exercise(id)}
  server.close();
  server.closeAllConnections?.();
  await shutdown();`;
}

function h3Body(id: string, format: string) {
  return `
  const app = new H3();
  app.use(posthog());
  app.get('/signup', async () => {
    ${route(format)}
    return { v2 };
  });
  const server = serve(app, { port: 0, hostname: '127.0.0.1', silent: true, gracefulShutdown: false });
  await server.ready();
  const url = new URL(server.url).origin;
  ${exercise(id)}
  await server.close(true);
  await shutdown();`;
}

function fastifyBody(id: string, format: string) {
  return `
  const app = Fastify();
  await app.register(posthog);
  app.get('/signup', async () => {
    ${route(format)}
    return { v2 };
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  ${exercise(id)}
  await app.close();
  await shutdown();`;
}

function nestBody(id: string, format: string) {
  // Decorators called by hand: plain JavaScript, no compiler.
  return `
  class AppController {
    async signup() {
      ${route(format)}
      return { v2 };
    }
    boom() {
      throw new Error('nest boom ${format}');
    }
  }
  for (const [path, name] of [['signup', 'signup'], ['boom', 'boom']])
    Get(path)(AppController.prototype, name, Object.getOwnPropertyDescriptor(AppController.prototype, name));
  Controller()(AppController);
  class AppModule {}
  Module({ imports: [PostHogModule.forRoot()], controllers: [AppController] })(AppModule);
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const url = await app.getUrl();
  // A handler's error: Nest answers 500, the module captures it.
  const failed = await fetch(url + '/boom', { headers: { 'x-posthog-distinct-id': '${id}' } });
  if (failed.status !== 500) throw new Error('/boom answered ' + failed.status);
  ${exercise(id)}
  await app.close();
  await shutdown();`;
}

/** One TypeScript file that uses every ready adapter's types, checked with `module: nodenext`. */
export function typecheckFile(ready: readonly string[]): string {
  const lines: string[] = [];
  if (ready.includes('express')) {
    lines.push(
      `import { capture, createPostHogKit, featureEnabled, type PostHogKit, posthog, posthogErrorHandler } from '@posthog-kit/express';`,
      `import express from 'express';`,
      `const app = express();`,
      `app.use(posthog());`,
      `app.get('/', async (req, res) => {`,
      `  req.posthog.capture('typed');`,
      `  const on: boolean = await featureEnabled('new-dashboard');`,
      `  capture('signed_up', { properties: { on } });`,
      `  res.json({ on });`,
      `});`,
      `app.use(posthogErrorHandler());`,
      `const kit: PostHogKit = createPostHogKit({ env: {} });`,
      `void kit.shutdown();`,
    );
  }
  if (ready.includes('koa')) {
    lines.push(
      `import { posthog as koaPostHog } from '@posthog-kit/koa';`,
      `import Koa from 'koa';`,
      `new Koa().use(koaPostHog()).use((ctx) => { ctx.state.posthog.capture('typed'); });`,
    );
  }
  if (ready.includes('hono')) {
    lines.push(
      `import { type PostHogEnv, posthog as honoPostHog } from '@posthog-kit/hono';`,
      `import { Hono } from 'hono';`,
      `new Hono<PostHogEnv>().use(honoPostHog()).get('/', (c) => { c.var.posthog.capture('typed'); return c.text('ok'); });`,
    );
  }
  if (ready.includes('h3')) {
    lines.push(
      `import { getPostHog, posthog as h3PostHog } from '@posthog-kit/h3';`,
      `import { H3 } from 'h3';`,
      `new H3().use(h3PostHog()).get('/', (event) => { getPostHog(event).capture('typed'); return 'ok'; });`,
    );
  }
  lines.push(
    `import { flag, type PostHogEmulator, startEmulator } from '@posthog-kit/testing';`,
    `const emulator: Promise<PostHogEmulator> = startEmulator({ flags: [flag('new-dashboard')] });`,
    `void emulator.then((e) => e.close());`,
  );
  // Imports first, as TypeScript wants them hoisted anyway.
  const imports = lines.filter((l) => l.startsWith('import '));
  return [...imports, ...lines.filter((l) => !l.startsWith('import '))].join('\n');
}
