// The NestJS adapter (Nest 11 and 12, on Express and on Fastify): a global module whose
// middleware runs each request in its context (RequestTracker, NodeRequestInfo) and whose
// interceptor reports errors; everything else is core's. An adapter author needs only
// @posthog-kit/core's RequestTracker and RequestInfo.
export * from '@posthog-kit/core';
export { PostHogJob, type PostHogJobOptions } from './job.ts';
export {
  PostHogModule,
  type PostHogModuleAsyncOptions,
  type PostHogModuleOptions,
} from './module.ts';
export { getPostHog, PostHog } from './request.ts';
