import { describe, expect, it } from 'vitest';
import { readmeTable, renderSettingsTable } from '../scripts/settings-table.ts';
import { ENV_VARS, PostHogKitError, parseSettings } from '../src/index.ts';

const errorOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PostHogKitError);
    return (error as Error).message;
  }
  throw new Error('expected a PostHogKitError');
};

describe('the settings table', () => {
  it('the README table is the one derived from src/settings.ts (node scripts/settings-table.ts --write)', () => {
    expect(readmeTable()).toBe(renderSettingsTable());
  });

  it('lists every environment variable the kit reads', () => {
    const table = renderSettingsTable();
    for (const name of ENV_VARS) expect(table).toContain(`\`${name}\``);
  });
});

describe('settings with sane bounds (durations, keys, URLs)', () => {
  it('an hour in ms typed into a seconds variable is an error, not a 1 ms poller', () => {
    expect(errorOf(() => parseSettings({ env: { POSTHOG_POLL_INTERVAL: '3000000' } }))).toBe(
      '[posthog-kit] POSTHOG_POLL_INTERVAL: expected a number of seconds from 0.1 to 3600, got "3000000"',
    );
    expect(
      errorOf(() => parseSettings({ env: { POSTHOG_FLAG_DEFINITIONS_LOCK_TTL: '99999999' } })),
    ).toContain('POSTHOG_FLAG_DEFINITIONS_LOCK_TTL: expected a number of seconds from 0 to 86400');
    expect(errorOf(() => parseSettings({ env: {}, pollIntervalMs: 2 ** 31 }))).toContain(
      'pollIntervalMs: expected a number of milliseconds from 100 to 3600000',
    );
  });

  it('a host with user:password@ is refused, and the password is never echoed', () => {
    const message = errorOf(() =>
      parseSettings({ env: { POSTHOG_HOST: 'https://admin:hunter2pw@eu.i.posthog.com' } }),
    );
    expect(message).toContain('POSTHOG_HOST: expected an http(s) URL without user:password@');
    expect(message).not.toContain('hunter2pw');
    const other = errorOf(() =>
      parseSettings({ env: {}, codeVariablesIgnorePatterns: ['redis://:hunter2pw@h:6379/0 (x'] }),
    );
    expect(other).not.toContain('hunter2pw');
  });

  it('a key that cannot travel in a header is blamed on the key, not the host', () => {
    expect(
      errorOf(() => parseSettings({ env: { POSTHOG_PERSONAL_API_KEY: 'phx_abc\u00e9def' } })),
    ).toBe(
      '[posthog-kit] POSTHOG_PERSONAL_API_KEY: expected a personal API key of printable ASCII characters (it is sent in the Authorization header), got a string of 11 characters',
    );
  });

  it('a lone surrogate in inAppModules fails at parse time', () => {
    expect(errorOf(() => parseSettings({ env: {}, inAppModules: ['src/\ud800'] }))).toContain(
      'inAppModules: expected a list of module names or path prefixes',
    );
  });
});
