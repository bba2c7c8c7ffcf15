// `npm run demo`: the worker against the local PostHog emulator when no real project
// key is set (or against PostHog when one is), then what PostHog received.
import { flag, type RecordedEvent, startEmulator } from '@posthog-kit/testing';
import { runWorker } from './worker.ts';

const jobs = [
  { id: 1, userId: 'user-1', email: 'ada@example.com' },
  { id: 2, userId: 'user-2', email: 'grace@example.com' },
  { id: 3, userId: 'user-3', email: 'not-an-address' },
  { id: 4, userId: 'user-4', email: 'linus@example.com' },
];

const realKey = process.env.POSTHOG_PROJECT_API_KEY || process.env.POSTHOG_API_KEY;
const emulator = realKey
  ? undefined
  : await startEmulator({ flags: [flag('new-email-template', { rollout: 50 })] });

if (emulator) {
  process.env.POSTHOG_HOST = emulator.url;
  process.env.POSTHOG_PROJECT_API_KEY = emulator.projectApiKey;
  process.env.POSTHOG_PERSONAL_API_KEY = emulator.personalApiKey;
  console.log(
    `No POSTHOG_PROJECT_API_KEY set: using the local PostHog emulator at ${emulator.url}\n`,
  );
} else {
  console.log(`Sending to ${process.env.POSTHOG_HOST ?? 'https://us.i.posthog.com'}\n`);
}

await runWorker(jobs);

if (emulator) {
  console.log(`PostHog received ${emulator.events.length} events:\n`);
  for (const event of emulator.events) console.log(`  ${describe(event)}`);
  console.log(
    `\nFlag definitions fetched ${emulator.definitionsFetchCount} time(s) for local evaluation.`,
  );
  await emulator.close();
} else {
  console.log('Done: look for email_sent events in your PostHog project.');
}

function describe(event: RecordedEvent): string {
  const p = event.properties ?? {};
  const pick = (keys: string[]) =>
    keys
      .filter((k) => p[k] !== undefined)
      .map((k) => `${k.replace(/^\$/, '')}=${JSON.stringify(p[k])}`)
      .join(' ');
  let detail: string;
  if (event.event === '$feature_flag_called') {
    detail = pick(['$feature_flag', '$feature_flag_response', 'locally_evaluated']);
  } else if (event.event === '$exception') {
    const list = p.$exception_list as Array<{ type?: string; value?: string }> | undefined;
    detail = `${list?.[0]?.type}: ${list?.[0]?.value}  ${pick(['job_id'])}`;
  } else {
    detail = pick(['queue', 'job_id', 'template']);
  }
  return `${event.event.padEnd(22)} ${String(event.distinctId).padEnd(8)} ${detail}`;
}
