import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { projects } from './vitest.workspace.ts';

const src = (path: string) => fileURLToPath(new URL(`./packages/${path}`, import.meta.url));

export default defineConfig({
  resolve: {
    // In-process tests run the sources; child processes and the Node 20 smoke run use dist.
    alias: [
      { find: /^@posthog-kit\/core$/, replacement: src('core/src/index.ts') },
      { find: /^@posthog-kit\/testing$/, replacement: src('testing/src/index.ts') },

      {
        find: /^@posthog-kit\/(express|koa|hono|h3|fastify|nestjs|conformance)$/,
        replacement: src('$1/src/index.ts'),
      },
    ],
  },
  test: {
    projects,
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    reporters: ['default'],
  },
});
