// Jobs (@nestjs/schedule's @Cron, @Interval, @Timeout, a queue consumer): each run in a
// context of its own. A timer keeps the context it was created in, so a job a request
// started (SchedulerRegistry.addCronJob in a handler) would report as that request forever.
import { captureException, type Properties, withContext } from '@posthog-kit/core';

/** Options of `@PostHogJob()`. */
export interface PostHogJobOptions {
  /**
   * The `job` tag of the run's events.
   * @default `ClassName.methodName`
   */
  name?: string | undefined;
  /**
   * The distinct id of the run's events.
   * @default none (personless events)
   */
  distinctId?: string | undefined;
  /** More tags for the run's events. */
  tags?: Properties | undefined;
}

type Method = (this: unknown, ...args: unknown[]) => unknown;

const report = (error: unknown) => {
  captureException(error);
  throw error;
};

/**
 * Runs each call of the method in a fresh context (nothing of a request that scheduled it),
 * tagged `job: name`; what it throws is captured once and re-thrown. Above or below `@Cron()`.
 */
export function PostHogJob(options: string | PostHogJobOptions = {}): MethodDecorator {
  const given = typeof options === 'string' ? { name: options } : options;
  return (target, key, descriptor) => {
    const original = descriptor.value as unknown as Method;
    const name = given.name ?? `${target.constructor.name}.${String(key)}`;
    const data = { distinctId: given.distinctId, tags: { job: name, ...given.tags } };
    const run: Method = function (this: unknown, ...args) {
      return withContext(
        data,
        () => {
          try {
            const value = original.apply(this, args);
            return value instanceof Promise ? value.catch(report) : value;
          } catch (error) {
            return report(error);
          }
        },
        { fresh: true },
      );
    };
    // @Cron() and the like keep their metadata on the function: it moves to the wrapper.
    const reflect = Reflect as { getOwnMetadataKeys?: (t: object) => unknown[] } & {
      getOwnMetadata?: (k: unknown, t: object) => unknown;
      defineMetadata?: (k: unknown, v: unknown, t: object) => void;
    };
    for (const k of reflect.getOwnMetadataKeys?.(original) ?? []) {
      reflect.defineMetadata?.(k, reflect.getOwnMetadata?.(k, original), run);
    }
    Object.defineProperty(run, 'name', { value: original.name });
    descriptor.value = run as typeof descriptor.value;
    return descriptor;
  };
}
