// What decides `in_app` on stack frames, and the masking constants shared by core and
// the code-variables entry. Pure functions: no runtime of its own.

/**
 * The built-in mask list: posthog-python's (the first 20), then more. A variable (or
 * object key) whose name matches one of these, case-insensitively, is sent as
 * {@link CODE_VARIABLES_REDACTED_VALUE}; names are also matched in their segment form
 * (`cardNumber` as `card_number`, `userPIN` as `user_pin`), so that short names (`pin`,
 * `pw`, `otp`) are matched as whole segments only, never inside `spinner` or `shipping`.
 */
export const DEFAULT_CODE_VARIABLES_MASK_PATTERNS: readonly string[] = Object.freeze([
  'password',
  'secret',
  'passwd',
  'pwd',
  'api_key',
  'apikey',
  'auth',
  'credentials',
  'privatekey',
  'private_key',
  'token',
  'aws_access_key_id',
  '_pass',
  'sk_',
  'jwt',
  'connection_string',
  'connectionstring',
  'conn_str',
  'connstr',
  'dsn',
  // Beyond posthog-python's list.
  'passphrase',
  'passcode',
  'credential',
  'access_?key',
  'signing_?key',
  'encryption_?key',
  'session_?id',
  'card_?num',
  'credit_?card',
  '(?:^|_)(?:pass|pw|pin|otp|totp|hotp|cvv|cvc|ssn|sid)(?:_|$)',
]);

/** What a masked code variable is sent as (posthog-python's marker). */
export const CODE_VARIABLES_REDACTED_VALUE = '$$_posthog_redacted_based_on_masking_rules_$$';
/** What a string over 2048 characters is sent as (posthog-python's marker). */
export const CODE_VARIABLES_TOO_LONG_VALUE = '$$_posthog_value_too_long_$$';

// Node's own code and things that are not files: never in-app, whatever the prefixes say.
const NOT_A_FILE = /^(?:node:|native$|<|\[|data:|wasm:|evalmachine\.)/;
const UNDER_NODE_MODULES = /(?:^|[/\\])node_modules[/\\]/;

function toPath(file: string): string {
  let path = file;
  if (path.startsWith('file://')) {
    path = path.slice('file://'.length);
    try {
      path = decodeURIComponent(path);
    } catch {
      // Keeps the encoded form.
    }
    if (/^\/[A-Za-z]:/.test(path)) path = path.slice(1);
  }
  return path.replace(/\\/g, '/');
}

/**
 * Whether a stack frame's file is the app's own code. With `inAppModules`, a frame is
 * in-app when its path (absolute, relative to `cwd`, or the part after its last
 * `node_modules/`) starts with one of them; without, when it is not under
 * `node_modules` and not Node's own. Takes paths, relative paths and `file://` URLs.
 */
export function isInAppFile(
  filename: string | undefined,
  inAppModules?: readonly string[],
  cwd?: string,
): boolean {
  if (!filename || NOT_A_FILE.test(filename)) return false;
  if (!inAppModules) return !UNDER_NODE_MODULES.test(filename);
  const path = toPath(filename);
  const absolute = path.startsWith('/') || /^[A-Za-z]:\//.test(path);
  const base = cwd === undefined ? undefined : toPath(cwd).replace(/\/+$/, '');
  let relative: string | undefined;
  if (!absolute) relative = path.replace(/^\.\//, '');
  else if (base !== undefined && path.startsWith(`${base}/`))
    relative = path.slice(base.length + 1);
  const full = absolute ? path : base !== undefined ? `${base}/${relative}` : undefined;
  const lastModules = path.lastIndexOf('node_modules/');
  const inPackage = lastModules < 0 ? undefined : path.slice(lastModules + 'node_modules/'.length);
  for (const raw of inAppModules) {
    const prefix = raw.replace(/\\/g, '/').replace(/^\.\//, '');
    if (prefix === '') continue;
    if (relative?.startsWith(prefix) || full?.startsWith(prefix) || inPackage?.startsWith(prefix)) {
      return true;
    }
  }
  return false;
}
