import type { TestProjectInlineConfiguration } from 'vitest/config';

/**
 * The one list of test projects. The root vitest.config.ts reads it
 * (current Vitest takes projects from `test.projects`).
 */
export const projects: TestProjectInlineConfiguration[] = [
  {
    extends: true,
    // A redis-server on a free port for the shared flag cache tests (skipped, with the reason, without one).
    test: {
      name: 'core',
      root: 'packages/core',
      globalSetup: ['../../test/redis-global-setup.ts'],
    },
  },
  { extends: true, test: { name: 'testing', root: 'packages/testing' } },
  { extends: true, test: { name: 'express', root: 'packages/express' } },
  { extends: true, test: { name: 'koa', root: 'packages/koa' } },
  { extends: true, test: { name: 'hono', root: 'packages/hono' } },
  { extends: true, test: { name: 'h3', root: 'packages/h3' } },
  { extends: true, test: { name: 'fastify', root: 'packages/fastify' } },
  { extends: true, test: { name: 'nestjs', root: 'packages/nestjs' } },
  { extends: true, test: { name: 'browser', root: 'browser' } },
  { extends: true, test: { name: 'example-worker', root: 'examples/worker' } },
  { extends: true, test: { name: 'example-express', root: 'examples/express' } },
  { extends: true, test: { name: 'example-nestjs', root: 'examples/nestjs' } },
  { extends: true, test: { name: 'example-koa', root: 'examples/koa' } },
  { extends: true, test: { name: 'example-fastify', root: 'examples/fastify' } },
  {
    extends: true,
    test: {
      name: 'example-custom-keyv-store',
      root: 'examples/custom-keyv-store',
      globalSetup: ['../../test/redis-global-setup.ts'],
    },
  },
  { extends: true, test: { name: 'example-hono', root: 'examples/hono' } },
  { extends: true, test: { name: 'example-h3', root: 'examples/h3' } },
  { extends: true, test: { name: 'smoke-node20', root: 'smoke/node20' } },
  { extends: true, test: { name: 'smoke-runtimes', root: 'smoke/runtimes' } },
  { extends: true, test: { name: 'smoke-packed', root: 'smoke/packed' } },
  { extends: true, test: { name: 'docs', root: 'test/docs', include: ['*.test.ts'] } },
  {
    extends: true,
    test: {
      name: 'reliability',
      root: 'reliability',
      globalSetup: ['../test/redis-global-setup.ts'],
    },
  },
];
