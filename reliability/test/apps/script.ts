// A plain script, as a cron job or a queue worker writes one: settings from POSTHOG_* in the
// environment, a flag read, events captured, and no shutdown() at the end. It must still send
// everything and end by itself.
import { capture, featureEnabled } from '@posthog-kit/core';

const count = Number(process.argv[2] ?? 137);
const run = process.argv[3] ?? 'script';

const v2 = await featureEnabled('new-dashboard', { distinctId: `${run}-0` });
for (let i = 0; i < count; i++) {
  capture('job_done', { distinctId: `${run}-${i}`, properties: { job: i, v2 } });
}
console.log(`captured ${count} events`);
