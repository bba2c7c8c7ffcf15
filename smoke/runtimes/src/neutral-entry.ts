// What a Worker imports: core's main entry, both adapters and their frameworks, bundled
// for a worker target by test/bundle.test.ts.
export * as core from '@posthog-kit/core';
export * as h3Adapter from '@posthog-kit/h3';
export * as honoAdapter from '@posthog-kit/hono';
export { H3 } from 'h3';
export { Hono } from 'hono';
