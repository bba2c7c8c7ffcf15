import * as v from 'valibot';
import { type ErrorMode, type KitLogger, PostHogKitError } from './errors.ts';
import type { FlagsStatus } from './flags/status.ts';
import { patternProblem } from './patterns.ts';
import type { ContextStorage, RequestHooks } from './types.ts';

/** posthog-node's default host. */
export const DEFAULT_HOST = 'https://us.i.posthog.com';

// ----- the pieces settings are made of -----

type EnvKind = 'string' | 'boolean' | 'seconds' | 'list' | 'lower';

interface SpecBase<TSchema extends v.GenericSchema> {
  /** Checks the value given in code, or read from the environment. */
  schema: TSchema;
  /** Environment names, first set one wins. */
  env?: readonly string[];
  /** How the environment's text is read. @default 'string' */
  read?: EnvKind;
  /** Shown only as its type and length in errors. */
  secret?: boolean;
  /** Also a per-middleware option (`posthog({ captureViews })`). */
  request?: boolean;
  /** Checked once every setting has its value: a problem, or undefined. */
  check?: (value: v.InferOutput<TSchema>, s: Draft) => string | undefined;
}
type Draft = Record<string, unknown>;
type Default<TSchema extends v.GenericSchema> =
  | v.InferOutput<TSchema>
  | ((s: Draft) => v.InferOutput<TSchema>);

interface Spec<TSchema extends v.GenericSchema, TDefault extends boolean>
  extends SpecBase<TSchema> {
  default: TDefault extends true ? Default<TSchema> : undefined;
  /** Given in code only (callables, objects): not part of `ResolvedSettings`. */
  code: false;
}
interface CodeSpec<TSchema extends v.GenericSchema> {
  schema: TSchema;
  code: true;
}

/** A setting with a default: its resolved value always has one. */
function withDefault<TSchema extends v.GenericSchema, const TRequest extends boolean = false>(
  spec: SpecBase<TSchema> & { default: Default<TSchema>; request?: TRequest },
): Spec<TSchema, true> & { request: TRequest } {
  return { ...spec, request: (spec.request ?? false) as TRequest, code: false };
}
/** A setting without a default: undefined until given. */
function optional<TSchema extends v.GenericSchema>(
  spec: SpecBase<TSchema>,
): Spec<TSchema, false> & { request: false } {
  return { ...spec, default: undefined, request: false, code: false };
}
/** An option given in code only. */
function codeOnly<T>(
  check: (x: unknown) => boolean,
  expected: string,
): CodeSpec<v.GenericSchema<T>> {
  return { schema: v.custom<T>(check, expected), code: true };
}

const MAX_DURATION_MS = 24 * 3_600_000;
const text = (what: string) =>
  v.pipe(v.string(`expected ${what}`), v.trim(), v.nonEmpty(`expected ${what}`));
const flag = v.boolean('expected a boolean');
/** Milliseconds in code; the environment gives seconds. Capped below setTimeout's overflow. */
const duration = (min: number, max: number) => {
  const what = `a number of milliseconds from ${min} to ${max}`;
  return v.pipe(
    v.number(`expected ${what}`),
    v.finite(`expected ${what}`),
    v.minValue(min, `expected ${what}`),
    v.maxValue(max, `expected ${what}`),
  );
};
const list = (what: string, check?: (item: string) => boolean) =>
  v.array(
    check
      ? v.pipe(v.string(`expected ${what}`), v.check(check, `expected ${what}`))
      : v.string(`expected ${what}`),
    `expected ${what}`,
  );
const isFunction = (x: unknown) => typeof x === 'function';
const hook = <K extends keyof RequestHooks>() =>
  codeOnly<RequestHooks[K]>(isFunction, 'expected a function');
/** A list of mask or ignore patterns: each usable, linear enough to run on hostile values. */
const patterns = v.pipe(
  v.array(
    v.string('expected a list of regular expressions'),
    'expected a list of regular expressions',
  ),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const problem = dataset.value.map(patternProblem).find((p) => p !== undefined);
    if (problem) addIssue({ message: `expected usable regular expressions: ${problem}` });
  }),
);
// Keys travel in headers and bodies: printable ASCII only.
const headerSafe = (s: string) => /^[\x21-\x7e]+$/.test(s);
const hasUserinfo = (s: string) => /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(s);
const wellFormed = (s: string) =>
  typeof (s as { isWellFormed?: () => boolean }).isWellFormed !== 'function' ||
  (s as unknown as { isWellFormed: () => boolean }).isWellFormed();

// A cookie's name is an HTTP token (RFC 6265).
const cookieName = v.pipe(
  text('a cookie name'),
  v.check(
    (s) => /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(s),
    "expected a cookie name (letters, digits and !#$%&'*+-.^_`|~)",
  ),
);
const httpUrl = v.pipe(
  text('an http(s) URL'),
  v.check((s) => /^https?:\/\/[^/\s]+/i.test(s) && URL.canParse(s), 'expected an http(s) URL'),
  v.check(
    (s) => !hasUserinfo(s),
    'expected an http(s) URL without user:password@ (PostHog authenticates with the keys)',
  ),
  v.transform((s) => s.replace(/\/+$/, '')),
);
const projectKey = v.pipe(
  text('a project API key (phc_...)'),
  v.check(headerSafe, 'expected a project API key (phc_...) of printable ASCII characters'),
);
const personalKey = v.pipe(
  text('a personal API key (phx_...) or project secret key (phs_...)'),
  v.check(
    (s) => !s.startsWith('phc_'),
    'expected a personal API key (phx_...) or project secret key (phs_...), got a project API key (phc_...)',
  ),
  v.check(
    headerSafe,
    'expected a personal API key of printable ASCII characters (it is sent in the Authorization header)',
  ),
);
const isRedisUrl = (s: string) => /^(redis|rediss|valkey|valkeys):\/\//i.test(s) && URL.canParse(s);
// Several comma-separated URLs are a Redis Cluster's seed nodes.
const redisUrl = v.pipe(
  text('a redis:// or rediss:// URL, or several comma-separated (a Redis Cluster)'),
  v.check(
    (s) => s.split(',').every((url) => isRedisUrl(url.trim())),
    'expected a redis:// or rediss:// URL, or several comma-separated (a Redis Cluster)',
  ),
);

/** The lock and cache TTLs of the shared definitions outlive a poll. */
const atLeastPoll = (ms: number, s: Draft) => {
  const poll = s.pollIntervalMs as number;
  return ms >= poll ? undefined : `expected at least the poll interval (${poll} ms)`;
};

// ----- the settings: one entry each -----

/**
 * Every setting, once: its check, environment names, default and (in the JSDoc, the
 * first line and `@default`) the line of the README's settings table. The option
 * types, the resolved type, the environment parsing, the defaults and the README
 * table all derive from here; a test keeps the README in step.
 */
const SETTINGS = {
  /**
   * Project API key (`phc_...`); without one the kit is disabled and every call is a no-op.
   * @default none: disabled
   */
  apiKey: optional({
    schema: projectKey,
    env: ['POSTHOG_PROJECT_API_KEY', 'POSTHOG_API_KEY'],
    secret: true,
  }),
  /**
   * Personal (`phx_`) or project secret (`phs_`) key: local flag evaluation.
   * @default none
   */
  personalApiKey: optional({
    schema: personalKey,
    env: ['POSTHOG_PERSONAL_API_KEY'],
    secret: true,
  }),
  /**
   * PostHog host.
   * @default `https://us.i.posthog.com`
   */
  host: withDefault({ schema: httpUrl, env: ['POSTHOG_HOST'], default: DEFAULT_HOST }),
  /**
   * Turns the kit off even with a key set.
   * @default true when a key is set
   */
  enabled: withDefault({
    schema: flag,
    env: ['POSTHOG_ENABLED'],
    read: 'boolean',
    default: true,
  }),
  /**
   * posthog-node's debug output.
   * @default `false`
   */
  debug: withDefault({ schema: flag, env: ['POSTHOG_DEBUG'], read: 'boolean', default: false }),
  /**
   * No GeoIP on events and flags (server IPs are not users').
   * @default `true`
   */
  disableGeoip: withDefault({
    schema: flag,
    env: ['POSTHOG_DISABLE_GEOIP'],
    read: 'boolean',
    default: true,
  }),
  /**
   * `log`, `raise` or `ignore`: what the kit does with its errors, see "Error modes".
   * @default `log`
   */
  errorMode: withDefault({
    schema: v.picklist(['log', 'raise', 'ignore'], 'expected one of log, raise, ignore'),
    env: ['POSTHOG_ERROR_MODE'],
    read: 'lower',
    default: 'log' as ErrorMode,
  }),
  /**
   * Capture uncaught exceptions and unhandled rejections of the process.
   * @default `false`
   */
  enableExceptionAutocapture: withDefault({
    schema: flag,
    env: ['POSTHOG_ENABLE_EXCEPTION_AUTOCAPTURE'],
    read: 'boolean',
    default: false,
  }),
  /**
   * Attach the local variables of in-app frames to captured exceptions.
   * @default `false`
   */
  captureExceptionCodeVariables: withDefault({
    schema: flag,
    env: ['POSTHOG_CAPTURE_EXCEPTION_CODE_VARIABLES'],
    read: 'boolean',
    default: false,
  }),
  /**
   * Variable names (regexes, case-insensitive) whose values are masked; added to the built-in list.
   * @default `[]`
   */
  codeVariablesMaskPatterns: withDefault({
    schema: patterns,
    env: ['POSTHOG_CODE_VARIABLES_MASK_PATTERNS'],
    read: 'list',
    default: (): string[] => [],
  }),
  /**
   * Keep the built-in mask list; turning this off is the only way to drop it.
   * @default `true`
   */
  useDefaultMaskPatterns: withDefault({ schema: flag, default: true }),
  /**
   * Variable names (regexes) that are dropped.
   * @default `['^__']`
   */
  codeVariablesIgnorePatterns: withDefault({
    schema: patterns,
    env: ['POSTHOG_CODE_VARIABLES_IGNORE_PATTERNS'],
    read: 'list',
    default: () => ['^__'],
  }),
  /**
   * Module names or path prefixes that are in-app.
   * @default none: not under node_modules and not Node's own
   */
  inAppModules: optional({
    schema: list('a list of module names or path prefixes', wellFormed),
    env: ['POSTHOG_IN_APP_MODULES'],
    read: 'list',
  }),
  /**
   * The middleware captures request errors.
   * @default `true`
   */
  captureExceptions: withDefault({
    schema: flag,
    env: ['POSTHOG_MW_CAPTURE_EXCEPTIONS'],
    read: 'boolean',
    request: true,
    default: true,
  }),
  /**
   * The middleware captures one view event per request.
   * @default `false`
   */
  captureViews: withDefault({
    schema: flag,
    env: ['POSTHOG_MW_CAPTURE_VIEWS'],
    read: 'boolean',
    request: true,
    default: false,
  }),
  /**
   * The view event's name.
   * @default `$pageview`
   */
  viewEventName: withDefault({
    schema: text('an event name'),
    request: true,
    default: '$pageview',
  }),
  /**
   * Read ids from the posthog-js cookie when the tracing headers are absent.
   * @default `false`
   */
  readPostHogCookie: withDefault({ schema: flag, request: true, default: false }),
  /**
   * The resolved user's id wins over the client-supplied `X-POSTHOG-DISTINCT-ID` header.
   * @default `false`
   */
  preferAuthenticatedUser: withDefault({ schema: flag, request: true, default: false }),
  /**
   * posthog-js's cookie, for a custom `persistence_name` (`'myapp'` is `ph_myapp`).
   * @default `ph_<apiKey>_posthog` (posthog-js's)
   */
  postHogCookieName: optional({ schema: cookieName }),
  /**
   * posthog-js's consent cookie, for a custom `consent_persistence_name`; see "Connecting posthog-js".
   * @default `__ph_opt_in_out_<apiKey>` (posthog-js's)
   */
  postHogConsentCookieName: optional({ schema: cookieName }),
  /**
   * The browser's `session_idle_timeout_seconds`, for a posthog-js cookie that does not hold it.
   * @default 30 min (posthog-js's)
   */
  sessionIdleTimeoutMs: withDefault({ schema: duration(60_000, 36_000_000), default: 1_800_000 }),
  /**
   * How often flag definitions are polled (local evaluation); at most an hour.
   * @default 30 s
   */
  pollIntervalMs: withDefault({
    schema: duration(100, 3_600_000),
    env: ['POSTHOG_POLL_INTERVAL'],
    read: 'seconds',
    default: 30_000,
  }),
  /**
   * Safety-net TTL of the shared definitions (at least the poll interval).
   * @default max(60 s, 2 × poll)
   */
  flagDefinitionsCacheTtlMs: withDefault({
    schema: duration(0, MAX_DURATION_MS),
    env: ['POSTHOG_FLAG_DEFINITIONS_CACHE_TTL'],
    read: 'seconds',
    default: (s) => Math.max(60_000, 2 * (s.pollIntervalMs as number)),
    check: atLeastPoll,
  }),
  /**
   * TTL of the leader's lease (at least the poll interval).
   * @default max(5 s, 2 × poll)
   */
  flagDefinitionsLockTtlMs: withDefault({
    schema: duration(0, MAX_DURATION_MS),
    env: ['POSTHOG_FLAG_DEFINITIONS_LOCK_TTL'],
    read: 'seconds',
    default: (s) => Math.max(5_000, 2 * (s.pollIntervalMs as number)),
    check: atLeastPoll,
  }),
  /**
   * `poll` (fetch with the personal key) or `store`: evaluate from the shared store only, no personal key, see "Store-only processes".
   * @default `poll`
   */
  flagDefinitionsSource: withDefault({
    schema: v.picklist(['poll', 'store'], 'expected one of poll, store'),
    env: ['POSTHOG_FLAG_DEFINITIONS_SOURCE'],
    read: 'lower',
    default: 'poll' as 'poll' | 'store',
  }),
  /**
   * Store-only: shared definitions older than this are not used (at least the poll interval).
   * @default the definitions cache TTL
   */
  flagDefinitionsMaxAgeMs: withDefault({
    schema: duration(0, MAX_DURATION_MS),
    env: ['POSTHOG_FLAG_DEFINITIONS_MAX_AGE'],
    read: 'seconds',
    default: (s) => s.flagDefinitionsCacheTtlMs as number,
    check: atLeastPoll,
  }),
  /**
   * Key prefix of the shared definitions.
   * @default `posthog:flag_definitions`
   */
  flagDefinitionsCachePrefix: withDefault({
    schema: text('a key prefix'),
    env: ['POSTHOG_FLAG_DEFINITIONS_CACHE_PREFIX'],
    default: 'posthog:flag_definitions',
  }),
  /**
   * TTL of cached flag results; 0 turns the result cache off.
   * @default `0` (off)
   */
  featureFlagsCacheTtlMs: withDefault({
    schema: duration(0, MAX_DURATION_MS),
    env: ['POSTHOG_FEATURE_FLAGS_CACHE_TTL'],
    read: 'seconds',
    default: 0,
  }),
  /**
   * Key prefix of cached flag results.
   * @default `posthog:feature_flags`
   */
  featureFlagsCachePrefix: withDefault({
    schema: text('a key prefix'),
    env: ['POSTHOG_FEATURE_FLAGS_CACHE_PREFIX'],
    default: 'posthog:feature_flags',
  }),
  /**
   * How long a request's flag reads may wait for PostHog in all, then they answer their defaults (0: as long as posthog-node takes, up to 9 s), see "Flags in a request".
   * @default 500 ms
   */
  featureFlagsBudgetMs: withDefault({
    schema: duration(0, 60_000),
    env: ['POSTHOG_FEATURE_FLAGS_BUDGET'],
    read: 'seconds',
    default: 500,
  }),
  /**
   * Events captured in a request carry the flags read in it (`$feature/<key>`, `$active_feature_flags`).
   * @default `true`
   */
  featureFlagsOnEvents: withDefault({
    schema: flag,
    env: ['POSTHOG_FEATURE_FLAGS_ON_EVENTS'],
    read: 'boolean',
    default: true,
  }),
  /**
   * Send one validation event (and fetch definitions once) at startup.
   * @default `false`
   */
  validateOnStartup: withDefault({
    schema: flag,
    env: ['POSTHOG_VALIDATE_ON_STARTUP'],
    read: 'boolean',
    default: false,
  }),
  /**
   * The validation event's name.
   * @default `posthog_kit_validation`
   */
  validateEventName: withDefault({
    schema: text('an event name'),
    env: ['POSTHOG_VALIDATE_EVENT_NAME'],
    default: 'posthog_kit_validation',
  }),
  /**
   * The validation event's distinct id.
   * @default `posthog_kit`
   */
  validateDistinctId: withDefault({
    schema: text('a distinct id'),
    env: ['POSTHOG_VALIDATE_DISTINCT_ID'],
    default: 'posthog_kit',
  }),
  /**
   * A Redis store for the flag caches (needs `@keyv/redis`); several comma-separated URLs are a Redis Cluster's seed nodes, see "Shared flag definitions".
   * @default none
   */
  redisUrl: optional({ schema: redisUrl, env: ['POSTHOG_REDIS_URL'], secret: true }),
  /**
   * The default kit flushes on SIGTERM/SIGINT and before the process exits, see "Shutdown".
   * @default `true`
   */
  shutdownHooks: withDefault({
    schema: flag,
    env: ['POSTHOG_SHUTDOWN_HOOKS'],
    read: 'boolean',
    default: true,
  }),
  /**
   * A Keyv instance or store for the flag caches; wins over `redisUrl`.
   * @default in-memory Keyv (shares nothing)
   */
  cache: codeOnly<object>(
    (x) =>
      typeof x === 'object' && x !== null && typeof (x as { get?: unknown }).get === 'function',
    'expected a Keyv instance or a Keyv store (an object with get/set/delete)',
  ),
  /**
   * `onFlagsStatus(status)`: called with `kit.flagsStatus()` whenever it changes (a load, a new leader, the store failing, an error).
   * @default none
   */
  onFlagsStatus: codeOnly<(status: FlagsStatus) => void>(isFunction, 'expected a function'),
  /**
   * Where `log` mode writes (`warn`, `error`, optional `debug`).
   * @default `console`
   */
  logger: codeOnly<KitLogger>(
    (x) =>
      typeof x === 'object' &&
      x !== null &&
      typeof (x as KitLogger).warn === 'function' &&
      typeof (x as KitLogger).error === 'function',
    'expected an object with warn and error methods',
  ),
  /**
   * Context storage: `{ run, get }`.
   * @default AsyncLocalStorage when found
   */
  contextStorage: codeOnly<ContextStorage>(
    (x) =>
      typeof x === 'object' &&
      x !== null &&
      typeof (x as ContextStorage).run === 'function' &&
      typeof (x as ContextStorage).get === 'function',
    'expected an object with run and get methods',
  ),
  /**
   * Passed to the posthog-node client as they are (flushAt, requestTimeout...).
   * @default the kit's tuned defaults, see below
   */
  clientOptions: codeOnly<Record<string, unknown>>(
    (x) => typeof x === 'object' && x !== null && !Array.isArray(x),
    'expected an object',
  ),
  /**
   * The fetch the client and validation use.
   * @default `globalThis.fetch`
   */
  fetch: codeOnly<typeof fetch>(isFunction, 'expected a function'),
  /**
   * Where `POSTHOG_*` settings are read from.
   * @default `process.env`
   */
  env: codeOnly<Record<string, string | undefined>>(
    (x) =>
      typeof x === 'object' &&
      x !== null &&
      Object.values(x).every((s) => s === undefined || typeof s === 'string'),
    'expected an object of strings',
  ),
  /**
   * `extraTags(req)`: tags added to every event of a request.
   * @default none
   */
  extraTags: hook<'extraTags'>(),
  /**
   * `requestFilter(req)`: `false` skips a request entirely (the handler still runs).
   * @default none: every request is tracked
   */
  requestFilter: hook<'requestFilter'>(),
  /**
   * `tagMap(tags)`: rewrites a request's tags.
   * @default none
   */
  tagMap: hook<'tagMap'>(),
  /**
   * `resolveUser(req)`: `{ id, email }` of the request's user.
   * @default the adapter's (`req.user`, ...)
   */
  resolveUser: hook<'resolveUser'>(),
  /**
   * `shouldCaptureError(error, status, req)`: which request errors are captured.
   * @default status absent or >= 500
   */
  shouldCaptureError: hook<'shouldCaptureError'>(),
};

type Table = typeof SETTINGS;
type Setting = Spec<v.GenericSchema, boolean> | CodeSpec<v.GenericSchema>;
type SettingKey = { [K in keyof Table]: Table[K] extends { code: false } ? K : never }[keyof Table];
type RequestHookKey = { [K in keyof Table]: K extends keyof RequestHooks ? K : never }[keyof Table];

/**
 * Everything the kit can be told. Code options win over the environment
 * (`POSTHOG_*`, durations there in seconds); callables and objects come from code only.
 */
export type PostHogKitOptions = {
  [K in keyof Table]?: v.InferInput<Table[K]['schema']> | undefined;
};

/** Settings after parsing: every default applied. */
export type ResolvedSettings = {
  -readonly [K in SettingKey]: Table[K] extends Spec<infer S, true>
    ? v.InferOutput<S>
    : v.InferOutput<Table[K]['schema']> | undefined;
};

/** The settings that are also per-middleware options. */
export type RequestSettingKey = {
  [K in SettingKey]: Table[K] extends { request: true } ? K : never;
}[SettingKey];

const ENTRIES = Object.entries(SETTINGS) as [keyof Table, Setting][];
const settingEntries = ENTRIES.filter(
  (e): e is [SettingKey, Spec<v.GenericSchema, boolean>] => !e[1].code,
);

/** Every environment variable the kit reads. */
export const ENV_VARS: readonly string[] = settingEntries.flatMap(([, s]) => s.env ?? []);

/** The settings a middleware may also take (`captureViews`, ...): the others belong to a kit. */
export const REQUEST_SETTINGS: ReadonlySet<string> = new Set(
  settingEntries.filter(([, s]) => s.request).map(([k]) => k),
);

/** The request hooks, given in code (`extraTags`, `requestFilter`, ...). */
export const REQUEST_HOOKS: readonly RequestHookKey[] = [
  'extraTags',
  'requestFilter',
  'tagMap',
  'resolveUser',
  'shouldCaptureError',
] satisfies readonly (keyof RequestHooks)[];

/** Whether an option belongs to one middleware (a request setting or hook), not to a kit. */
export function isRequestOption(key: string): boolean {
  return REQUEST_SETTINGS.has(key) || (REQUEST_HOOKS as readonly string[]).includes(key);
}

/** One row per setting, for the README: option, environment names, and the kind it is. @internal */
export function settingsTable(): { option: string; env: readonly string[]; code: boolean }[] {
  return ENTRIES.map(([option, spec]) => ({
    option,
    env: spec.code ? [] : (spec.env ?? []),
    code: spec.code,
  }));
}

const SCHEMA = v.object(
  Object.fromEntries(ENTRIES.map(([key, spec]) => [key, v.optional(spec.schema)])),
);

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

/** A URL's `user:password@` never leaves the process, in any setting's error. */
const maskUserinfo = (s: string) =>
  s.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/?#\s@]*@/gi, '$1[redacted]@');

/** How a bad value is shown: keys and URLs that may carry passwords only by type. */
function describeValue(key: string, value: unknown): string {
  const spec = (SETTINGS as Record<string, Setting>)[key];
  if (spec && !spec.code && spec.secret) {
    return typeof value === 'string'
      ? `a string of ${value.length} characters`
      : describeType(value);
  }
  if (typeof value === 'string') {
    const shown = maskUserinfo(value);
    return JSON.stringify(shown.length > 80 ? `${shown.slice(0, 77)}...` : shown);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return `${value} (${typeof value})`;
  if (Array.isArray(value)) {
    let json: string;
    try {
      json = maskUserinfo(JSON.stringify(value));
    } catch {
      return 'an array';
    }
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

/**
 * Why a kit without a project key is disabled, when the environment suggests it was
 * meant to be on (`POSTHOG_*` set, a misspelled key name): a line to say once, or undefined.
 */
export function disabledReason(options: PostHogKitOptions): string | undefined {
  if (options.apiKey !== undefined) return undefined;
  const env = options.env ?? readEnv();
  const set = Object.keys(env).filter(
    (n) => n.startsWith('POSTHOG_') && (env[n] ?? '').trim() !== '',
  );
  if (set.length === 0) return undefined;
  const unknown = set.filter((n) => !ENV_VARS.includes(n));
  const names = (unknown.length > 0 ? unknown : set).slice(0, 5);
  const not =
    unknown.length > 1 ? ' (names the kit does not read)' : ' (a name the kit does not read)';
  return `the kit is disabled: no project key (POSTHOG_PROJECT_API_KEY or POSTHOG_API_KEY) is set, though ${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} set${unknown.length > 0 ? not : ''}`;
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
    if (!(key in SETTINGS)) {
      issues.push({ key, codeKey: key, message: `unknown option ${JSON.stringify(key)}`, value });
    } else if (value !== undefined) {
      input[key] = value;
    }
  }
  for (const [key, spec] of settingEntries) {
    if (input[key] !== undefined) continue;
    const name = spec.env?.find((n) => (env[n] ?? '').trim() !== '');
    if (!name) continue;
    const raw = env[name] as string;
    const read = fromEnv(spec.read ?? 'string', raw);
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
      // An environment value is checked in code units: say it in the env's (seconds).
      const message = envName.has(key) ? envMessage(key, issue.message) : issue.message;
      issues.push({
        key: envName.get(key) ?? key,
        codeKey: key,
        message,
        value: envRaw.has(key) ? envRaw.get(key) : input[key],
      });
    }
  }

  const resolved: Draft = {};
  if (result.success) {
    const parsed = result.output as Draft;
    for (const [key, spec] of settingEntries) {
      const given = parsed[key];
      resolved[key] =
        given !== undefined
          ? given
          : typeof spec.default === 'function'
            ? (spec.default as (s: Draft) => unknown)(resolved)
            : spec.default;
    }
    for (const [key, spec] of settingEntries) {
      const problem = spec.check?.(resolved[key] as never, resolved);
      if (!problem) continue;
      const name = envName.get(key);
      issues.push({
        key: name ?? key,
        codeKey: key,
        message: name ? envMessage(key, problem) : problem,
        value: name ? (resolved[key] as number) / 1000 : resolved[key],
      });
    }
  }
  if (issues.length > 0) throw settingsError(issues);
  resolved.enabled = resolved.enabled === true && resolved.apiKey !== undefined;
  return resolved as ResolvedSettings;
}

/** A duration message in seconds, for a value read from the environment. */
function envMessage(key: string, message: string): string {
  const spec = (SETTINGS as Record<string, Setting>)[key];
  if (!spec || spec.code || spec.read !== 'seconds') return message;
  return message
    .replace(
      /a number of milliseconds from (\d+) to (\d+)/,
      (_, a: string, b: string) =>
        `a number of seconds from ${Number(a) / 1000} to ${Number(b) / 1000}`,
    )
    .replace(/\((\d+) ms\)/, (_, a: string) => `(${Number(a) / 1000} s)`);
}

function settingsError(issues: Issue[]): PostHogKitError {
  const lines = issues.map((i) =>
    maskUserinfo(
      i.message.startsWith('unknown option')
        ? `${i.message}: not a posthog-kit setting`
        : `${i.key}: ${i.message.includes(', got ') ? i.message : `${i.message}, got ${describeValue(i.codeKey, i.value)}`}`,
    ),
  );
  const message =
    lines.length === 1
      ? lines[0]!
      : `${lines.length} invalid settings:\n${lines.map((l) => `  - ${l}`).join('\n')}`;
  return new PostHogKitError(message, 'settings');
}
