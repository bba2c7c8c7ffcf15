import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { projects } from './vitest.workspace.ts';

const src = (pkg: string) =>
  fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // In-process tests run the sources; child processes and the Node 20 smoke run use dist.
    alias: {
      '@posthog-kit/core': src('core'),
      '@posthog-kit/testing': src('testing'),
    },
  },
  test: {
    projects,
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    reporters: ['default'],
  },
});
