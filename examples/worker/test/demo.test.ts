import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const exec = promisify(execFile);

it('the demo runs the worker against the emulator and prints what PostHog received', async () => {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('POSTHOG_')),
  );
  const { stdout } = await exec(process.execPath, ['src/demo.ts'], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    env,
    timeout: 30_000,
  });
  expect(stdout).toContain('using the local PostHog emulator');
  expect(stdout).toMatch(/PostHog received 8 events/);
  expect(stdout.match(/email_sent/g)).toHaveLength(3);
  expect(stdout).toMatch(/\$exception\s+user-3\s+TypeError: job 3: invalid address/);
  expect(stdout.match(/\$feature_flag_called/g)).toHaveLength(4);
  expect(stdout).toContain('Flag definitions fetched 1 time(s)');
});
