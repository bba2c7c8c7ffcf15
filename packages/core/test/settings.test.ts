import { describe, expect, it } from 'vitest';
import { ENV_VARS, PostHogKitError, parseSettings } from '../src/index.ts';

const parse = (env: Record<string, string>, code: Record<string, unknown> = {}) =>
  parseSettings({ env, ...code });

const errorOf = (fn: () => unknown): PostHogKitError => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PostHogKitError);
    return error as PostHogKitError;
  }
  throw new Error('expected a PostHogKitError');
};

describe('settings defaults', () => {
  it('an empty environment is a disabled kit with every default', () => {
    expect(parse({})).toEqual({
      apiKey: undefined,
      personalApiKey: undefined,
      host: 'https://us.i.posthog.com',
      enabled: false,
      debug: false,
      disableGeoip: true,
      errorMode: 'log',
      enableExceptionAutocapture: false,
      captureExceptionCodeVariables: false,
      codeVariablesMaskPatterns: [],
      useDefaultMaskPatterns: true,
      codeVariablesIgnorePatterns: ['^__'],
      inAppModules: undefined,
      captureExceptions: true,
      captureViews: false,
      viewEventName: '$pageview',
      readPostHogCookie: false,
      preferAuthenticatedUser: false,
      pollIntervalMs: 30_000,
      flagDefinitionsCacheTtlMs: 60_000,
      flagDefinitionsLockTtlMs: 60_000,
      flagDefinitionsSource: 'poll',
      flagDefinitionsMaxAgeMs: 60_000,
      flagDefinitionsCachePrefix: 'posthog:flag_definitions',
      featureFlagsCacheTtlMs: 0,
      featureFlagsCachePrefix: 'posthog:feature_flags',
      featureFlagsBudgetMs: 500,
      featureFlagsOnEvents: true,
      validateOnStartup: false,
      validateEventName: 'posthog_kit_validation',
      validateDistinctId: 'posthog_kit',
      redisUrl: undefined,
      shutdownHooks: true,
      postHogCookieName: undefined,
      postHogConsentCookieName: undefined,
      sessionIdleTimeoutMs: 1_800_000,
    });
  });

  it('a project key enables the kit', () => {
    expect(parse({ POSTHOG_PROJECT_API_KEY: 'phc_abc' })).toMatchObject({
      apiKey: 'phc_abc',
      enabled: true,
    });
  });

  it('derives the definitions TTLs from the poll interval', () => {
    const s = parse({ POSTHOG_POLL_INTERVAL: '45' });
    expect(s.pollIntervalMs).toBe(45_000);
    expect(s.flagDefinitionsCacheTtlMs).toBe(90_000);
    expect(s.flagDefinitionsLockTtlMs).toBe(90_000);
    const fast = parse({ POSTHOG_POLL_INTERVAL: '1' });
    expect(fast.flagDefinitionsCacheTtlMs).toBe(60_000);
    expect(fast.flagDefinitionsLockTtlMs).toBe(5_000);
  });
});

describe('every environment variable', () => {
  const cases: Array<[string, string, Record<string, unknown>]> = [
    ['POSTHOG_PROJECT_API_KEY', 'phc_project', { apiKey: 'phc_project' }],
    ['POSTHOG_API_KEY', 'phc_fallback', { apiKey: 'phc_fallback' }],
    ['POSTHOG_PERSONAL_API_KEY', 'phx_personal', { personalApiKey: 'phx_personal' }],
    ['POSTHOG_HOST', 'https://eu.i.posthog.com/', { host: 'https://eu.i.posthog.com' }],
    ['POSTHOG_ENABLED', 'false', { enabled: false }],
    ['POSTHOG_DEBUG', 'yes', { debug: true }],
    ['POSTHOG_DISABLE_GEOIP', '0', { disableGeoip: false }],
    ['POSTHOG_ERROR_MODE', 'RAISE', { errorMode: 'raise' }],
    ['POSTHOG_ENABLE_EXCEPTION_AUTOCAPTURE', 'on', { enableExceptionAutocapture: true }],
    ['POSTHOG_CAPTURE_EXCEPTION_CODE_VARIABLES', 'true', { captureExceptionCodeVariables: true }],
    [
      'POSTHOG_CODE_VARIABLES_MASK_PATTERNS',
      'card, ssn',
      { codeVariablesMaskPatterns: ['card', 'ssn'] },
    ],
    [
      'POSTHOG_CODE_VARIABLES_IGNORE_PATTERNS',
      '["^_", "tmp$"]',
      { codeVariablesIgnorePatterns: ['^_', 'tmp$'] },
    ],
    ['POSTHOG_IN_APP_MODULES', 'src/,@acme/', { inAppModules: ['src/', '@acme/'] }],
    ['POSTHOG_MW_CAPTURE_EXCEPTIONS', 'false', { captureExceptions: false }],
    ['POSTHOG_MW_CAPTURE_VIEWS', 'true', { captureViews: true }],
    ['POSTHOG_FLAG_DEFINITIONS_CACHE_TTL', '600', { flagDefinitionsCacheTtlMs: 600_000 }],
    ['POSTHOG_FLAG_DEFINITIONS_LOCK_TTL', '40', { flagDefinitionsLockTtlMs: 40_000 }],
    [
      'POSTHOG_FLAG_DEFINITIONS_CACHE_PREFIX',
      'acme:defs',
      { flagDefinitionsCachePrefix: 'acme:defs' },
    ],
    ['POSTHOG_FEATURE_FLAGS_CACHE_TTL', '2.5', { featureFlagsCacheTtlMs: 2_500 }],
    ['POSTHOG_FEATURE_FLAGS_CACHE_PREFIX', 'acme:flags', { featureFlagsCachePrefix: 'acme:flags' }],
    ['POSTHOG_FEATURE_FLAGS_BUDGET', '0.25', { featureFlagsBudgetMs: 250 }],
    ['POSTHOG_FEATURE_FLAGS_ON_EVENTS', 'false', { featureFlagsOnEvents: false }],
    ['POSTHOG_POLL_INTERVAL', '10', { pollIntervalMs: 10_000 }],
    ['POSTHOG_VALIDATE_ON_STARTUP', '1', { validateOnStartup: true }],
    ['POSTHOG_VALIDATE_EVENT_NAME', 'boot_check', { validateEventName: 'boot_check' }],
    ['POSTHOG_VALIDATE_DISTINCT_ID', 'svc-a', { validateDistinctId: 'svc-a' }],
    ['POSTHOG_REDIS_URL', 'redis://127.0.0.1:6379/2', { redisUrl: 'redis://127.0.0.1:6379/2' }],
    ['POSTHOG_SHUTDOWN_HOOKS', 'false', { shutdownHooks: false }],
    ['POSTHOG_FLAG_DEFINITIONS_SOURCE', 'STORE', { flagDefinitionsSource: 'store' }],
    ['POSTHOG_FLAG_DEFINITIONS_MAX_AGE', '120', { flagDefinitionsMaxAgeMs: 120_000 }],
  ];

  it('the table covers every variable the kit reads', () => {
    expect(new Set(cases.map(([name]) => name))).toEqual(new Set(ENV_VARS));
  });

  it.each(cases)('%s=%s', (name, value, expected) => {
    expect(parse({ [name]: value })).toMatchObject(expected);
  });

  it('POSTHOG_PROJECT_API_KEY wins over POSTHOG_API_KEY', () => {
    expect(parse({ POSTHOG_PROJECT_API_KEY: 'phc_a', POSTHOG_API_KEY: 'phc_b' }).apiKey).toBe(
      'phc_a',
    );
  });

  it('blank values count as unset', () => {
    expect(parse({ POSTHOG_PROJECT_API_KEY: '  ', POSTHOG_HOST: '' })).toMatchObject({
      apiKey: undefined,
      host: 'https://us.i.posthog.com',
      enabled: false,
    });
  });

  it('code options win over the environment', () => {
    const s = parse(
      {
        POSTHOG_HOST: 'https://eu.i.posthog.com',
        POSTHOG_MW_CAPTURE_VIEWS: 'false',
        POSTHOG_POLL_INTERVAL: '5',
      },
      { host: 'http://127.0.0.1:8000', captureViews: true, pollIntervalMs: 1_000 },
    );
    expect(s).toMatchObject({
      host: 'http://127.0.0.1:8000',
      captureViews: true,
      pollIntervalMs: 1_000,
    });
  });

  it('enabled=false with a key is disabled; enabled=true without a key stays disabled', () => {
    expect(parse({ POSTHOG_API_KEY: 'phc_a', POSTHOG_ENABLED: 'off' }).enabled).toBe(false);
    expect(parse({ POSTHOG_ENABLED: 'true' }).enabled).toBe(false);
  });
});

describe('bad settings', () => {
  it('a bad URL names the env variable and shows the value', () => {
    expect(errorOf(() => parse({ POSTHOG_HOST: 'ftp:/x' })).message).toBe(
      '[posthog-kit] POSTHOG_HOST: expected an http(s) URL, got "ftp:/x"',
    );
  });

  it('an unknown error mode', () => {
    expect(errorOf(() => parse({ POSTHOG_ERROR_MODE: 'loud' })).message).toBe(
      '[posthog-kit] POSTHOG_ERROR_MODE: expected one of log, raise, ignore, got "loud"',
    );
    expect(errorOf(() => parse({}, { errorMode: 'LOUD' })).message).toBe(
      '[posthog-kit] errorMode: expected one of log, raise, ignore, got "LOUD"',
    );
  });

  it('a negative TTL, from the env and from code', () => {
    expect(errorOf(() => parse({ POSTHOG_FEATURE_FLAGS_CACHE_TTL: '-5' })).message).toBe(
      '[posthog-kit] POSTHOG_FEATURE_FLAGS_CACHE_TTL: expected a non-negative number of seconds, got "-5"',
    );
    expect(errorOf(() => parse({}, { featureFlagsCacheTtlMs: -5 })).message).toBe(
      '[posthog-kit] featureFlagsCacheTtlMs: expected a number of milliseconds from 0 to 86400000, got -5 (number)',
    );
  });

  it('wrong types in code', () => {
    expect(errorOf(() => parse({}, { captureViews: 'yes' })).message).toBe(
      '[posthog-kit] captureViews: expected a boolean, got "yes"',
    );
    expect(errorOf(() => parse({}, { extraTags: { a: 1 } })).message).toBe(
      '[posthog-kit] extraTags: expected a function, got an object',
    );
    expect(errorOf(() => parse({}, { inAppModules: 'src' })).message).toBe(
      '[posthog-kit] inAppModules: expected a list of module names or path prefixes, got "src"',
    );
  });

  it('a bad boolean and a bad list in the env', () => {
    expect(errorOf(() => parse({ POSTHOG_DEBUG: 'maybe' })).message).toBe(
      '[posthog-kit] POSTHOG_DEBUG: expected a boolean (true/false, 1/0, yes/no, on/off), got "maybe"',
    );
    expect(errorOf(() => parse({ POSTHOG_IN_APP_MODULES: '[1, 2]' })).message).toBe(
      '[posthog-kit] POSTHOG_IN_APP_MODULES: expected a JSON array of strings or a comma-separated list, got "[1, 2]"',
    );
    expect(
      errorOf(() => parse({ POSTHOG_CODE_VARIABLES_MASK_PATTERNS: '(unclosed' })).message,
    ).toBe(
      '[posthog-kit] POSTHOG_CODE_VARIABLES_MASK_PATTERNS: expected usable regular expressions: the pattern "(unclosed" cannot be used: a group is not closed, got "(unclosed"',
    );
    expect(errorOf(() => parse({}, { codeVariablesIgnorePatterns: ['ok', '[bad'] })).message).toBe(
      '[posthog-kit] codeVariablesIgnorePatterns: expected usable regular expressions: the pattern "[bad" cannot be used: a character class is not closed, got ["ok","[bad"]',
    );
  });

  it('a lock TTL below the poll interval', () => {
    expect(
      errorOf(() => parse({ POSTHOG_POLL_INTERVAL: '30', POSTHOG_FLAG_DEFINITIONS_LOCK_TTL: '10' }))
        .message,
    ).toBe(
      '[posthog-kit] POSTHOG_FLAG_DEFINITIONS_LOCK_TTL: expected at least the poll interval (30 s), got 10 (number)',
    );
  });

  it('one error names every bad setting', () => {
    const error = errorOf(() =>
      parse(
        { POSTHOG_HOST: 'nope', POSTHOG_POLL_INTERVAL: 'soon' },
        { captureViews: 1, apiKey: 42, colour: 'red' },
      ),
    );
    expect(error.message).toBe(
      [
        '[posthog-kit] 5 invalid settings:',
        '  - unknown option "colour": not a posthog-kit setting',
        '  - POSTHOG_POLL_INTERVAL: expected a non-negative number of seconds, got "soon"',
        '  - apiKey: expected a project API key (phc_...), got a number',
        '  - POSTHOG_HOST: expected an http(s) URL, got "nope"',
        '  - captureViews: expected a boolean, got 1 (number)',
      ].join('\n'),
    );
    expect(error.where).toBe('settings');
  });

  it('never prints a key, even a wrong one', () => {
    const personal = errorOf(() => parse({ POSTHOG_PERSONAL_API_KEY: 'phc_secretproject123' }));
    expect(personal.message).toBe(
      '[posthog-kit] POSTHOG_PERSONAL_API_KEY: expected a personal API key (phx_...) or project secret key (phs_...), got a project API key (phc_...)',
    );
    const wrongRedis = errorOf(() =>
      parse({ POSTHOG_REDIS_URL: 'http://user:hunter2@cache:6379' }),
    );
    expect(wrongRedis.message).toBe(
      '[posthog-kit] POSTHOG_REDIS_URL: expected a redis:// or rediss:// URL, or several comma-separated (a Redis Cluster), got a string of 30 characters',
    );
    expect(wrongRedis.message).not.toContain('hunter2');
  });
});
