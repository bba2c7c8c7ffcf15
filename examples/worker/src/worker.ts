// A queue worker using @posthog-kit/core directly: one context per job, so every
// event and flag look-up of the job carries the job's user and tags.
import {
  capture,
  captureException,
  configure,
  featureEnabled,
  shutdown,
  tag,
  withContext,
} from '@posthog-kit/core';

export interface Job {
  id: number;
  userId: string;
  email: string;
}

async function sendEmail(job: Job, template: string): Promise<void> {
  if (!job.email.includes('@'))
    throw new TypeError(`job ${job.id}: invalid address "${job.email}"`);
  await new Promise((resolve) => setTimeout(resolve, 5));
  tag('template', template);
}

/** Processes the jobs, then flushes and shuts down (within 5 s, whatever PostHog does). */
export async function runWorker(jobs: Job[]): Promise<void> {
  // Settings come from POSTHOG_* in the environment; without a key every call is a no-op.
  configure();
  for (const job of jobs) {
    await withContext(
      { distinctId: job.userId, tags: { queue: 'emails', job_id: job.id } },
      async () => {
        const newTemplate = await featureEnabled('new-email-template');
        try {
          await sendEmail(job, newTemplate ? 'v2' : 'v1');
          capture('email_sent');
        } catch (error) {
          captureException(error);
        }
      },
    );
  }
  await shutdown(5_000);
}
