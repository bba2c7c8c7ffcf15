import * as v from 'valibot';
import { type ErrorMode, type KitLogger, PostHogKitError } from './errors.ts';
import type { ContextStorage, RequestHooks } from './types.ts';

/** posthog-node's default host. */
export const DEFAULT_HOST = 'https://us.i.posthog.com';

/**
 * Everything the kit can be told. Code options win over the environment
 * (`POSTHOG_*`, durations there in seconds); callables and objects come from code only.
 */
export interface PostHogKitOptions extends RequestHooks {
  /**
   * Project API key (`phc_...`). Without one the kit is disabled and every call is a no-op.
   * Env: `POSTHOG_PROJECT_API_KEY`, or `POSTHOG_API_KEY`.
   * @default undefined
   */
  apiKey?: string | undefined;
  /**
   * Personal API key (`phx_...`) or project secret key (`phs_...`): turns on local flag evaluation.
   * Env: `POSTHOG_PERSONAL_API_KEY`.
   * @default undefined
   */
  personalApiKey?: string | undefined;
  /**
   * PostHog host. Env: `POSTHOG_HOST`.
   * @default 'https://us.i.posthog.com'
   */
  host?: string | undefined;
  /**
   * Turns the kit off even with a key. Env: `POSTHOG_ENABLED`.
   * @default true when a project key is set
   */
  enabled?: boolean | undefined;
  /**
   * posthog-node's debug output. Env: `POSTHOG_DEBUG`.
   * @default false
   */
  debug?: boolean | undefined;
  /**
   * Skip GeoIP on events and flag calls (server IPs are not users'). Env: `POSTHOG_DISABLE_GEOIP`.
   * @default true
   */
  disableGeoip?: boolean | undefined;
  /**
   * `log`: one line through the logger; `raise`: throw errors a caller awaits as
   * `PostHogKitError`; `ignore`: drop them. Env: `POSTHOG_ERROR_MODE`.
   * @default 'log'
   */
  errorMode?: ErrorMode | undefined;
  /**
   * Capture uncaught exceptions and unhandled rejections of the process.
   * Env: `POSTHOG_ENABLE_EXCEPTION_AUTOCAPTURE`.
   * @default false
   */
  enableExceptionAutocapture?: boolean | undefined;
  /**
   * Attach the local variables of in-app frames to captured exceptions.
   * Env: `POSTHOG_CAPTURE_EXCEPTION_CODE_VARIABLES`.
   * @default false
   */
  captureExceptionCodeVariables?: boolean | undefined;
  /**
   * Regexes (case-insensitive) for variable names whose values are masked; added to the defaults.
   * Env: `POSTHOG_CODE_VARIABLES_MASK_PATTERNS` (JSON array or comma separated).
   * @default [] (plus the built-in list)
   */
  codeVariablesMaskPatterns?: string[] | undefined;
  /**
   * Keep the built-in mask patterns. Turning this off is the only way to drop them.
   * @default true
   */
  useDefaultMaskPatterns?: boolean | undefined;
  /**
   * Regexes for variable names that are dropped. Env: `POSTHOG_CODE_VARIABLES_IGNORE_PATTERNS`.
   * @default ['^__']
   */
  codeVariablesIgnorePatterns?: string[] | undefined;
  /**
   * Module names or path prefixes that are in-app. Env: `POSTHOG_IN_APP_MODULES`.
   * @default undefined (in-app = not under node_modules and not Node's own)
   */
  inAppModules?: string[] | undefined;
  /**
   * Capture request errors in the middleware. Env: `POSTHOG_MW_CAPTURE_EXCEPTIONS`.
   * @default true
   */
  captureExceptions?: boolean | undefined;
  /**
   * Capture one view event per request. Env: `POSTHOG_MW_CAPTURE_VIEWS`.
   * @default false
   */
  captureViews?: boolean | undefined;
  /**
   * The event name of view capture.
   * @default '$pageview'
   */
  viewEventName?: string | undefined;
  /**
   * Read distinct and session ids from the posthog-js cookie when the tracing headers are absent.
   * @default false
   */
  readPostHogCookie?: boolean | undefined;
  /**
   * Prefer the authenticated user (the user resolver) over the client-supplied
   * `X-POSTHOG-DISTINCT-ID` header. Off, the header wins, as posthog-js sends it.
   * @default false
   */
  preferAuthenticatedUser?: boolean | undefined;
  /**
   * How often flag definitions are polled (local evaluation). Env: `POSTHOG_POLL_INTERVAL` (seconds).
   * @default 30000
   */
  pollIntervalMs?: number | undefined;
  /**
   * Safety-net TTL of the shared flag definitions. Env: `POSTHOG_FLAG_DEFINITIONS_CACHE_TTL` (seconds).
   * @default max(60 s, 2 × poll interval)
   */
  flagDefinitionsCacheTtlMs?: number | undefined;
  /**
   * TTL of the leader's lease; at least the poll interval. Env: `POSTHOG_FLAG_DEFINITIONS_LOCK_TTL` (seconds).
   * @default max(5 s, 2 × poll interval)
   */
  flagDefinitionsLockTtlMs?: number | undefined;
  /**
   * Key prefix of the shared flag definitions. Env: `POSTHOG_FLAG_DEFINITIONS_CACHE_PREFIX`.
   * @default 'posthog:flag_definitions'
   */
  flagDefinitionsCachePrefix?: string | undefined;
  /**
   * TTL of cached flag results; 0 turns the result cache off. Env: `POSTHOG_FEATURE_FLAGS_CACHE_TTL` (seconds).
   * @default 0
   */
  featureFlagsCacheTtlMs?: number | undefined;
  /**
   * Key prefix of cached flag results. Env: `POSTHOG_FEATURE_FLAGS_CACHE_PREFIX`.
   * @default 'posthog:feature_flags'
   */
  featureFlagsCachePrefix?: string | undefined;
  /**
   * Send one validation event (and fetch definitions once, with a personal key) at startup.
   * Env: `POSTHOG_VALIDATE_ON_STARTUP`.
   * @default false
   */
  validateOnStartup?: boolean | undefined;
  /**
   * Event name of the startup validation. Env: `POSTHOG_VALIDATE_EVENT_NAME`.
   * @default 'posthog_kit_validation'
   */
  validateEventName?: string | undefined;
  /**
   * Distinct id of the startup validation event. Env: `POSTHOG_VALIDATE_DISTINCT_ID`.
   * @default 'posthog_kit'
   */
  validateDistinctId?: string | undefined;
  /**
   * A Redis URL: builds a Redis Keyv store for the flag caches. Env: `POSTHOG_REDIS_URL`.
   * @default undefined (an in-memory store, shared by nothing)
   */
  redisUrl?: string | undefined;
  /**
   * A Keyv instance, or any Keyv store, for the flag caches (shared definitions, results).
   * @default an in-memory Keyv
   */
  cache?: unknown;
  /**
   * Where `log` mode writes. Any object with `warn` and `error`.
   * @default console
   */
  logger?: KitLogger | undefined;
  /**
   * Context storage. AsyncLocalStorage is found at run time when this is not given.
   * @default AsyncLocalStorage when the runtime has it
   */
  contextStorage?: ContextStorage | undefined;
  /**
   * Options passed to the posthog-node client as they are (flushAt, flushInterval, requestTimeout...).
   * @default the kit's tuned defaults, see the README
   */
  clientOptions?: Record<string, unknown> | undefined;
  /**
   * The fetch the client and validation use.
   * @default globalThis.fetch
   */
  fetch?: typeof fetch | undefined;
  /**
   * Where `POSTHOG_*` settings are read from.
   * @default process.env (an empty object where there is no process)
   */
  env?: Record<string, string | undefined> | undefined;
}

/** Settings after parsing: every default applied. */
export interface ResolvedSettings {
  apiKey: string | undefined;
  personalApiKey: string | undefined;
  host: string;
  enabled: boolean;
  debug: boolean;
  disableGeoip: boolean;
  errorMode: ErrorMode;
  enableExceptionAutocapture: boolean;
  captureExceptionCodeVariables: boolean;
  codeVariablesMaskPatterns: string[];
  useDefaultMaskPatterns: boolean;
  codeVariablesIgnorePatterns: string[];
  inAppModules: string[] | undefined;
  captureExceptions: boolean;
  captureViews: boolean;
  viewEventName: string;
  readPostHogCookie: boolean;
  preferAuthenticatedUser: boolean;
  pollIntervalMs: number;
  flagDefinitionsCacheTtlMs: number;
  flagDefinitionsLockTtlMs: number;
  flagDefinitionsCachePrefix: string;
  featureFlagsCacheTtlMs: number;
  featureFlagsCachePrefix: string;
  validateOnStartup: boolean;
  validateEventName: string;
  validateDistinctId: string;
  redisUrl: string | undefined;
}

type ScalarKey = keyof ResolvedSettings;
type EnvKind = 'string' | 'secret' | 'boolean' | 'seconds' | 'list' | 'lower';

/** The settings that can come from the environment, and how their text is read. */
const ENV: Partial<Record<ScalarKey, { names: string[]; kind: EnvKind }>> = {
  apiKey: { names: ['POSTHOG_PROJECT_API_KEY', 'POSTHOG_API_KEY'], kind: 'secret' },
  personalApiKey: { names: ['POSTHOG_PERSONAL_API_KEY'], kind: 'secret' },
  host: { names: ['POSTHOG_HOST'], kind: 'string' },
  enabled: { names: ['POSTHOG_ENABLED'], kind: 'boolean' },
  debug: { names: ['POSTHOG_DEBUG'], kind: 'boolean' },
  disableGeoip: { names: ['POSTHOG_DISABLE_GEOIP'], kind: 'boolean' },
  errorMode: { names: ['POSTHOG_ERROR_MODE'], kind: 'lower' },
  enableExceptionAutocapture: { names: ['POSTHOG_ENABLE_EXCEPTION_AUTOCAPTURE'], kind: 'boolean' },
  captureExceptionCodeVariables: {
    names: ['POSTHOG_CAPTURE_EXCEPTION_CODE_VARIABLES'],
    kind: 'boolean',
  },
  codeVariablesMaskPatterns: { names: ['POSTHOG_CODE_VARIABLES_MASK_PATTERNS'], kind: 'list' },
  codeVariablesIgnorePatterns: { names: ['POSTHOG_CODE_VARIABLES_IGNORE_PATTERNS'], kind: 'list' },
  inAppModules: { names: ['POSTHOG_IN_APP_MODULES'], kind: 'list' },
  captureExceptions: { names: ['POSTHOG_MW_CAPTURE_EXCEPTIONS'], kind: 'boolean' },
  captureViews: { names: ['POSTHOG_MW_CAPTURE_VIEWS'], kind: 'boolean' },
  pollIntervalMs: { names: ['POSTHOG_POLL_INTERVAL'], kind: 'seconds' },
  flagDefinitionsCacheTtlMs: { names: ['POSTHOG_FLAG_DEFINITIONS_CACHE_TTL'], kind: 'seconds' },
  flagDefinitionsLockTtlMs: { names: ['POSTHOG_FLAG_DEFINITIONS_LOCK_TTL'], kind: 'seconds' },
  flagDefinitionsCachePrefix: { names: ['POSTHOG_FLAG_DEFINITIONS_CACHE_PREFIX'], kind: 'string' },
  featureFlagsCacheTtlMs: { names: ['POSTHOG_FEATURE_FLAGS_CACHE_TTL'], kind: 'seconds' },
  featureFlagsCachePrefix: { names: ['POSTHOG_FEATURE_FLAGS_CACHE_PREFIX'], kind: 'string' },
  validateOnStartup: { names: ['POSTHOG_VALIDATE_ON_STARTUP'], kind: 'boolean' },
  validateEventName: { names: ['POSTHOG_VALIDATE_EVENT_NAME'], kind: 'string' },
  validateDistinctId: { names: ['POSTHOG_VALIDATE_DISTINCT_ID'], kind: 'string' },
  redisUrl: { names: ['POSTHOG_REDIS_URL'], kind: 'string' },
};

/** Every environment variable the kit reads. */
export const ENV_VARS: readonly string[] = Object.values(ENV).flatMap((spec) => spec.names);

const SECRET_KEYS = new Set<string>(['apiKey', 'personalApiKey', 'redisUrl']);

const isRegex = (source: string) => {
  try {
    new RegExp(source, 'i');
    return true;
  } catch {
    return false;
  }
};

const text = (what: string) =>
  v.pipe(v.string(`expected ${what}`), v.trim(), v.nonEmpty(`expected ${what}`));
const flag = v.boolean('expected a boolean');
const duration = (min: number, what: string) =>
  v.pipe(
    v.number(`expected ${what}`),
    v.finite(`expected ${what}`),
    v.minValue(min, `expected ${what}`),
  );
const list = (what: string, check?: (item: string) => boolean) =>
  v.array(
    check
      ? v.pipe(v.string(`expected ${what}`), v.check(check, `expected ${what}`))
      : v.string(`expected ${what}`),
    `expected ${what}`,
  );
const callable = v.function('expected a function');

const httpUrl = v.pipe(
  text('an http(s) URL'),
  v.check((s) => /^https?:\/\/[^/\s]+/i.test(s) && URL.canParse(s), 'expected an http(s) URL'),
  v.transform((s) => s.replace(/\/+$/, '')),
);
const redisUrl = v.pipe(
  text('a redis:// or rediss:// URL'),
  v.check(
    (s) => /^(redis|rediss|valkey|valkeys):\/\//i.test(s) && URL.canParse(s),
    'expected a redis:// or rediss:// URL',
  ),
);
const personalKey = v.pipe(
  text('a personal API key (phx_...) or project secret key (phs_...)'),
  v.check(
    (s) => !s.startsWith('phc_'),
    'expected a personal API key (phx_...) or project secret key (phs_...), got a project API key (phc_...)',
  ),
);

const SCHEMA = v.object({
  apiKey: v.optional(text('a project API key (phc_...)')),
  personalApiKey: v.optional(personalKey),
  host: v.optional(httpUrl),
  enabled: v.optional(flag),
  debug: v.optional(flag),
  disableGeoip: v.optional(flag),
  errorMode: v.optional(
    v.picklist(['log', 'raise', 'ignore'], 'expected one of log, raise, ignore'),
  ),
  enableExceptionAutocapture: v.optional(flag),
  captureExceptionCodeVariables: v.optional(flag),
  codeVariablesMaskPatterns: v.optional(list('a list of regular expressions', isRegex)),
  useDefaultMaskPatterns: v.optional(flag),
  codeVariablesIgnorePatterns: v.optional(list('a list of regular expressions', isRegex)),
  inAppModules: v.optional(list('a list of module names or path prefixes')),
  captureExceptions: v.optional(flag),
  captureViews: v.optional(flag),
  viewEventName: v.optional(text('an event name')),
  readPostHogCookie: v.optional(flag),
  preferAuthenticatedUser: v.optional(flag),
  pollIntervalMs: v.optional(duration(100, 'a number of milliseconds >= 100')),
  flagDefinitionsCacheTtlMs: v.optional(duration(0, 'a non-negative number of milliseconds')),
  flagDefinitionsLockTtlMs: v.optional(duration(0, 'a non-negative number of milliseconds')),
  flagDefinitionsCachePrefix: v.optional(text('a key prefix')),
  featureFlagsCacheTtlMs: v.optional(duration(0, 'a non-negative number of milliseconds')),
  featureFlagsCachePrefix: v.optional(text('a key prefix')),
  validateOnStartup: v.optional(flag),
  validateEventName: v.optional(text('an event name')),
  validateDistinctId: v.optional(text('a distinct id')),
  redisUrl: v.optional(redisUrl),
  cache: v.optional(
    v.custom<object>(
      (x) =>
        typeof x === 'object' && x !== null && typeof (x as { get?: unknown }).get === 'function',
      'expected a Keyv instance or a Keyv store (an object with get/set/delete)',
    ),
  ),
  logger: v.optional(
    v.custom<KitLogger>(
      (x) =>
        typeof x === 'object' &&
        x !== null &&
        typeof (x as KitLogger).warn === 'function' &&
        typeof (x as KitLogger).error === 'function',
      'expected an object with warn and error methods',
    ),
  ),
  contextStorage: v.optional(
    v.custom<ContextStorage>(
      (x) =>
        typeof x === 'object' &&
        x !== null &&
        typeof (x as ContextStorage).run === 'function' &&
        typeof (x as ContextStorage).get === 'function',
      'expected an object with run and get methods',
    ),
  ),
  clientOptions: v.optional(v.record(v.string(), v.unknown(), 'expected an object')),
  fetch: v.optional(callable),
  env: v.optional(v.record(v.string(), v.optional(v.string()), 'expected an object of strings')),
  extraTags: v.optional(callable),
  requestFilter: v.optional(callable),
  tagMap: v.optional(callable),
  resolveUser: v.optional(callable),
  shouldCaptureError: v.optional(callable),
});

type Issue = { key: string; codeKey: string; message: string; value: unknown };

const TRUE = /^(true|1|yes|on)$/i;
const FALSE = /^(false|0|no|off)$/i;

/** Reads one environment value into the type the schema checks, or explains why it cannot. */
function fromEnv(kind: EnvKind, raw: string): { value: unknown } | { error: string } {
  const s = raw.trim();
  switch (kind) {
    case 'boolean':
      if (TRUE.test(s)) return { value: true };
      if (FALSE.test(s)) return { value: false };
      return { error: 'expected a boolean (true/false, 1/0, yes/no, on/off)' };
    case 'seconds': {
      const n = s === '' ? Number.NaN : Number(s);
      if (!Number.isFinite(n) || n < 0)
        return { error: 'expected a non-negative number of seconds' };
      return { value: Math.round(n * 1000) };
    }
    case 'list':
      if (s.startsWith('[')) {
        try {
          const parsed: unknown = JSON.parse(s);
          if (Array.isArray(parsed) && parsed.every((x) => typeof x === 'string')) {
            return { value: parsed };
          }
        } catch {
          // Falls through to the error below.
        }
        return { error: 'expected a JSON array of strings or a comma-separated list' };
      }
      return {
        value: s
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean),
      };
    case 'lower':
      return { value: s.toLowerCase() };
    default:
      return { value: s };
  }
}

/** How a bad value is shown: keys and URLs that may carry passwords only by type. */
function describeValue(key: string, value: unknown): string {
  if (SECRET_KEYS.has(key)) {
    return typeof value === 'string'
      ? `a string of ${value.length} characters`
      : describeType(value);
  }
  if (typeof value === 'string')
    return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return `${value} (${typeof value})`;
  if (Array.isArray(value)) {
    const json = JSON.stringify(value);
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  }
  return describeType(value);
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'function') return 'a function';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function readEnv(): Record<string, string | undefined> {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return proc?.env ?? {};
}

/**
 * Parses code options and the environment into settings, once. Throws one
 * `PostHogKitError` naming every bad setting (by env name when it came from the env).
 */
export function parseSettings(options: PostHogKitOptions = {}): ResolvedSettings {
  const env = options.env ?? readEnv();
  const issues: Issue[] = [];
  const input: Record<string, unknown> = {};
  const envName = new Map<string, string>();
  const envRaw = new Map<string, string>();

  for (const [key, value] of Object.entries(options)) {
    if (!(key in SCHEMA.entries)) {
      issues.push({ key, codeKey: key, message: `unknown option ${JSON.stringify(key)}`, value });
    } else if (value !== undefined) {
      input[key] = value;
    }
  }
  for (const [key, spec] of Object.entries(ENV)) {
    if (input[key] !== undefined) continue;
    const name = spec.names.find((n) => (env[n] ?? '').trim() !== '');
    if (!name) continue;
    const raw = env[name] as string;
    const read = fromEnv(spec.kind, raw);
    if ('error' in read) {
      issues.push({ key: name, codeKey: key, message: read.error, value: raw });
      continue;
    }
    input[key] = read.value;
    envName.set(key, name);
    envRaw.set(key, raw);
  }

  const result = v.safeParse(SCHEMA, input);
  if (!result.success) {
    for (const issue of result.issues) {
      const key = String(issue.path?.[0]?.key ?? '');
      issues.push({
        key: envName.get(key) ?? key,
        codeKey: key,
        message: issue.message,
        value: envRaw.has(key) ? envRaw.get(key) : input[key],
      });
    }
  }
  const parsed = (result.success ? result.output : {}) as PostHogKitOptions;

  const pollIntervalMs = parsed.pollIntervalMs ?? 30_000;
  const lockTtl = parsed.flagDefinitionsLockTtlMs ?? Math.max(5_000, 2 * pollIntervalMs);
  const cacheTtl = parsed.flagDefinitionsCacheTtlMs ?? Math.max(60_000, 2 * pollIntervalMs);
  if (result.success) {
    const atLeastPoll = (
      key: 'flagDefinitionsLockTtlMs' | 'flagDefinitionsCacheTtlMs',
      ms: number,
    ) => {
      if (ms >= pollIntervalMs) return;
      const name = envName.get(key);
      issues.push({
        key: name ?? key,
        codeKey: key,
        message: `expected at least the poll interval (${name ? `${pollIntervalMs / 1000} s` : `${pollIntervalMs} ms`})`,
        value: name ? ms / 1000 : ms,
      });
    };
    atLeastPoll('flagDefinitionsLockTtlMs', lockTtl);
    atLeastPoll('flagDefinitionsCacheTtlMs', cacheTtl);
  }

  if (issues.length > 0) throw settingsError(issues);

  const apiKey = parsed.apiKey;
  return {
    apiKey,
    personalApiKey: parsed.personalApiKey,
    host: parsed.host ?? DEFAULT_HOST,
    enabled: (parsed.enabled ?? true) && apiKey !== undefined,
    debug: parsed.debug ?? false,
    disableGeoip: parsed.disableGeoip ?? true,
    errorMode: parsed.errorMode ?? 'log',
    enableExceptionAutocapture: parsed.enableExceptionAutocapture ?? false,
    captureExceptionCodeVariables: parsed.captureExceptionCodeVariables ?? false,
    codeVariablesMaskPatterns: parsed.codeVariablesMaskPatterns ?? [],
    useDefaultMaskPatterns: parsed.useDefaultMaskPatterns ?? true,
    codeVariablesIgnorePatterns: parsed.codeVariablesIgnorePatterns ?? ['^__'],
    inAppModules: parsed.inAppModules,
    captureExceptions: parsed.captureExceptions ?? true,
    captureViews: parsed.captureViews ?? false,
    viewEventName: parsed.viewEventName ?? '$pageview',
    readPostHogCookie: parsed.readPostHogCookie ?? false,
    preferAuthenticatedUser: parsed.preferAuthenticatedUser ?? false,
    pollIntervalMs,
    flagDefinitionsCacheTtlMs: cacheTtl,
    flagDefinitionsLockTtlMs: lockTtl,
    flagDefinitionsCachePrefix: parsed.flagDefinitionsCachePrefix ?? 'posthog:flag_definitions',
    featureFlagsCacheTtlMs: parsed.featureFlagsCacheTtlMs ?? 0,
    featureFlagsCachePrefix: parsed.featureFlagsCachePrefix ?? 'posthog:feature_flags',
    validateOnStartup: parsed.validateOnStartup ?? false,
    validateEventName: parsed.validateEventName ?? 'posthog_kit_validation',
    validateDistinctId: parsed.validateDistinctId ?? 'posthog_kit',
    redisUrl: parsed.redisUrl,
  };
}

function settingsError(issues: Issue[]): PostHogKitError {
  const lines = issues.map((i) =>
    i.message.startsWith('unknown option')
      ? `${i.message}: not a posthog-kit setting`
      : `${i.key}: ${i.message.includes(', got ') ? i.message : `${i.message}, got ${describeValue(i.codeKey, i.value)}`}`,
  );
  const message =
    lines.length === 1
      ? lines[0]!
      : `${lines.length} invalid settings:\n${lines.map((l) => `  - ${l}`).join('\n')}`;
  return new PostHogKitError(message, 'settings');
}
