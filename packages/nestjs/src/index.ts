// The NestJS adapter (Nest 11 and 12, on Express and on Fastify): a global module whose
// request hook runs each request in its context (RequestTracker, NodeRequestInfo) and that
// reports errors from Nest's exception dispatch; everything else is core's. An adapter author needs only
// @posthog-kit/core's RequestTracker and RequestInfo.
export * from '@posthog-kit/core';
export { PostHogJob, type PostHogJobOptions } from './job.ts';
export {
  PostHogModule,
  type PostHogModuleAsyncOptions,
  type PostHogModuleOptions,
} from './module.ts';
export { getPostHog, PostHog } from './request.ts';
