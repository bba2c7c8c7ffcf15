// Masking and the wire format of code variables, as posthog-python sends them: a frame's
// `code_variables` maps each name to a finite number or a string (objects as JSON).
import {
  CODE_VARIABLES_REDACTED_VALUE as REDACTED,
  CODE_VARIABLES_TOO_LONG_VALUE as TOO_LONG_TEXT,
} from '../frames.ts';
import { compilePattern } from '../patterns.ts';
import { CUT_NAME, MAX_STRING_LENGTH, type SnapValue } from './snapshot.ts';

/** A value (a string, or an object's JSON) is cut to this many characters. */
export const MAX_VALUE_LENGTH = 1_024;
/** Names and values of all the variables of one exception, in UTF-8 bytes. */
export const MAX_BYTES_PER_EXCEPTION = 10 * 1024;

/** Longest variable or key name the patterns see; a longer name has its value masked. */
export const MAX_NAME_LENGTH = 256;
/** Time masking may take for one exception; what is left after it is masked whole. */
export const MASK_TIME_LIMIT_MS = 50;

/** The masking of one capture, compiled. */
export interface Rules {
  /** Whether a string value must be masked by the mask patterns (given at most {@link MAX_VALUE_LENGTH} characters). */
  mask(text: string): boolean;
  /** Whether a variable or key name has its value masked. */
  maskName(name: string): boolean;
  /** Whether a variable name is dropped. */
  ignore(name: string): boolean;
}

/**
 * `cardNumber`, `card-number`, `CARD_NUMBER` and `userPIN` as `card_number`,
 * `card_number`, `card_number` and `user_pin`: names made of segments, so a pattern can
 * ask for a whole segment (`pin`, not the `pin` of `spinner`).
 */
export function nameSegments(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .replace(/([A-Za-z])([0-9])/g, '$1_$2')
    .replace(/([0-9])([A-Za-z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toLowerCase();
}

const anyMatch = (regexes: readonly RegExp[]) => (text: string) => {
  for (const r of regexes) if (r.test(text)) return true;
  return false;
};
const always = () => true;

// Problems already reported, so that each bad pattern is said once, not per exception.
const reported = new Set<string>();
function reportOnce(report: ((message: string) => void) | undefined, message: string): void {
  if (!report || reported.has(message)) return;
  if (reported.size >= 100) reported.clear();
  reported.add(message);
  try {
    report(message);
  } catch {
    // A reporter that throws must not cost the event.
  }
}

/**
 * Compiles the patterns of one capture. Mask patterns are case-insensitive
 * (posthog-python's `(?i)`), ignore patterns as written; both take posthog-python's
 * syntax too. Never fails open: when a mask pattern cannot be used (set per context,
 * so not checked with the settings), every name and value of the exception is masked;
 * when an ignore pattern cannot be used, every variable is dropped. Each problem is
 * reported once through `report`.
 */
export function compileRules(
  maskPatterns: readonly string[],
  ignorePatterns: readonly string[],
  report?: (message: string) => void,
): Rules {
  const compileAll = (patterns: readonly string[], ignoreCase: boolean, what: string) => {
    const regexes: RegExp[] = [];
    for (const pattern of patterns) {
      try {
        regexes.push(compilePattern(pattern, { ignoreCase }));
      } catch (error) {
        reportOnce(
          report,
          `code variables: ${error instanceof Error ? error.message.replace(/^\[posthog-kit\] /, '') : String(error)}; ${what}`,
        );
        return undefined;
      }
    }
    return regexes;
  };
  const mask = compileAll(
    maskPatterns,
    true,
    'every variable of the exceptions that use it is masked',
  );
  const ignore = compileAll(
    ignorePatterns,
    false,
    'no variables are sent for the exceptions that use it',
  );
  const ignored = ignore ? anyMatch(ignore) : always;
  const ignoreName = (name: string) => ignored(name.slice(0, MAX_NAME_LENGTH));
  if (!mask) return { mask: always, maskName: always, ignore: ignoreName };
  const masked = anyMatch(mask);
  return {
    mask: masked,
    maskName: (name) => {
      if (name.length > MAX_NAME_LENGTH) return true;
      if (masked(name) || CREDENTIAL_HEADER.test(name)) return true;
      const segments = nameSegments(name);
      return segments !== name && masked(segments);
    },
    ignore: ignoreName,
  };
}

// Credential formats with a distinctive shape, matched anywhere in a value whatever the
// variable is called: posthog-python's list (the floor), then more.
const KNOWN_SECRETS = new RegExp(
  [
    // posthog-python's formats
    /sk-ant-[\w-]{16,}/, // Anthropic
    /sk-(?:proj-)?[\w-]{20,}/, // OpenAI
    /hf_[A-Za-z0-9]{30,}/, // Hugging Face
    /(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[0-9A-Z]{16}/, // AWS key ids
    /AIza[\w-]{35}/, // Google API key
    /ya29\.[\w-]{20,}/, // Google OAuth token
    /do[opr]_v1_[a-f0-9]{64}/, // DigitalOcean
    /(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}/, // Stripe
    /sq0[a-z]{3}-[\w-]{22,43}/, // Square
    /gh[pousr]_[A-Za-z0-9]{30,}/, // GitHub
    /github_pat_\w{20,}/,
    /gl(?:pat|ptt|rt|soat)-[\w-]{20,}/, // GitLab
    /glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}/, // Grafana service account
    /xox[abeoprs]-[\w-]{10,}/, // Slack
    /xapp-[0-9]-[A-Za-z0-9-]{10,}/, // Slack app-level
    /SK[0-9a-fA-F]{32}/, // Twilio
    /SG\.[\w-]{20,}\.[\w-]{20,}/, // SendGrid
    /key-[0-9a-f]{32}/, // Mailgun
    /[0-9a-f]{32}-us[0-9]{1,2}/, // Mailchimp
    /npm_[A-Za-z0-9]{36}/, // npm
    /pypi-AgEI[\w-]{50,}/, // PyPI
    /dapi[0-9a-f]{32}/, // Databricks
    /dp\.pt\.[A-Za-z0-9]{40,}/, // Doppler
    /PMAK-[a-f0-9]{24}-[a-f0-9]{34}/, // Postman
    /lin_api_[A-Za-z0-9]{40}/, // Linear
    /ntn_[A-Za-z0-9]{40,}/, // Notion
    /shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}/, // Shopify
    /NR(?:AK|JS|II|MA|RA)-[A-Za-z0-9]{27}/, // New Relic
    /eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{4,}/, // JWT
    // and more
    /ph[cxs]_[A-Za-z0-9]{20,}/, // PostHog
    /\b[Bb]earer\s+[\w\-.~+/]{16,}/,
    /\bBasic\s+[A-Za-z0-9+/]{16,}={0,2}/,
  ]
    .map((r) => r.source)
    .join('|'),
);
// Covers PEM's RSA, EC, OpenSSH and PKCS#8 keys, whole or cut (posthog-python's marker).
const PRIVATE_KEY = 'PRIVATE KEY-----';
// A Cookie header (or one cookie) whose value is long enough to be a session id.
const COOKIE = /^[\w.-]+=[^;\s]{16,}(?:;\s*[\w.-]+=[^;]*)*$/;
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]{0,30}:\/\/)[^\s/?#@]+@/gi;
// HTTP headers that carry credentials, whatever the mask patterns (a request object in a
// frame holds them, as keys of `headers` or as name/value pairs in `rawHeaders`).
const CREDENTIAL_HEADER = /^(?:(?:set-)?cookie|x-api-key|x-auth-token|proxy-authorization)$/i;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEX = /^[0-9a-f]+$/i;
const NOT_IN_A_TOKEN = /[\s()[\]{}<>'"`,;]/;
const WORD_SEGMENT = /^[a-z][a-z.]*$/;
// A label then a hash or a number: `sha256:9f86d0...`, `order-000123`.
const LABELLED_ID = /^[A-Za-z][A-Za-z0-9]{0,9}[:_-](?:[0-9a-f]+|[0-9]+)$/i;

/** Shannon entropy, bits per character. */
function entropyBits(s: string): number {
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/** A URL, a Windows path, or a path with two word-like segments (posthog-python's rule). */
function pathOrUrl(s: string): boolean {
  if (s.includes('://') || s.includes('\\')) return true;
  if (!s.includes('/')) return false;
  let words = 0;
  for (const segment of s.split('/')) if (WORD_SEGMENT.test(segment) && ++words >= 2) return true;
  return false;
}

/**
 * Average length of the runs a string is made of (`getUser2024` is get, User, 2024: 3.7;
 * `xK9mP2vL` is x, K, 9, m, P, 2, v, L: 1): words make long runs, random text short ones.
 */
function meanRun(s: string): number {
  const runs = s.match(/[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+|[^A-Za-z0-9]/g);
  return runs ? s.length / runs.length : s.length;
}

/**
 * Unbroken, varied, high-entropy text: a key, a token or a strong password, whatever it
 * is called. posthog-python's rule (16 characters or more, three character classes of
 * lower, upper, digit, symbol, 3.8 bits a character; not a UUID, hex, a path, a URL or
 * structured text), except that under 20 characters the text must not be made of words
 * (posthog-python masks `teamConfigIndex1574` there) and may have the slightly lower
 * entropy that 16 random characters often have (log2(length) - 0.7 bits).
 */
function highEntropy(s: string): boolean {
  const n = s.length;
  if (n < 16 || NOT_IN_A_TOKEN.test(s) || pathOrUrl(s) || UUID.test(s) || HEX.test(s)) return false;
  const classes =
    Number(/[a-z]/.test(s)) +
    Number(/[A-Z]/.test(s)) +
    Number(/[0-9]/.test(s)) +
    Number(/[^A-Za-z0-9]/.test(s));
  if (classes < 3) return false;
  const bits = entropyBits(s);
  if (n >= 20) return bits >= 3.8;
  if (LABELLED_ID.test(s) || meanRun(s) >= 2.2) return false;
  return bits >= Math.min(3.8, Math.log2(n) - 0.7);
}

/** Whether a value looks like a credential (known token formats, private keys, entropy). */
export function looksLikeSecret(s: string): boolean {
  if (s.includes(PRIVATE_KEY)) return true;
  if (s.length < 16) return false;
  return highEntropy(s) || KNOWN_SECRETS.test(s) || COOKIE.test(s);
}

/** The masking of one exception: its rules and the time it may take. */
interface Masking {
  readonly rules: Rules;
  readonly until: number;
}

const now = () => performance.now();

/**
 * A string value as sent: cut to what can be sent, masked by the rules (which see that
 * cut text only) and by its look (which sees all of it), credentials cut out of URLs.
 */
function maskString(s: string, m: Masking): string {
  if (s.length > MAX_STRING_LENGTH) return TOO_LONG_TEXT;
  if (now() > m.until) return REDACTED;
  if (looksLikeSecret(s)) return REDACTED;
  const sent = cut(s);
  if (m.rules.mask(sent)) return REDACTED;
  return sent.includes('://')
    ? sent.replace(URL_CREDENTIALS, (_, scheme) => `${scheme}${REDACTED}@`)
    : sent;
}

// Keys that label a `{ name, value }` pair: `{ name: 'password', value }` masks `value`.
const LABEL_KEYS = new Set([
  'name',
  'key',
  'field',
  'header',
  'label',
  'param',
  'parameter',
  'variable',
  'prop',
  'property',
  'attribute',
]);

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

function maskTree(v: SnapValue, m: Masking): Json {
  if (typeof v === 'string') return maskString(v, m);
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'boolean' || v === null) return v;
  if (v === undefined) return 'undefined';
  switch (v.t) {
    case 'long':
      return TOO_LONG_TEXT;
    case 'leaf':
      return maskString(v.s, m);
    case 'arr': {
      // In a [name, value, name, value] list (rawHeaders, entries), a masked name masks its value.
      const items: Json[] = [];
      let maskNext = false;
      for (const item of v.i) {
        items.push(maskNext ? REDACTED : maskTree(item, m));
        maskNext = typeof item === 'string' && m.rules.maskName(item);
      }
      if (v.m > 0) items.push(`... ${v.m} more`);
      return items;
    }
    case 'obj': {
      // No prototype: a key named __proto__ stays a key.
      const out = Object.create(null) as { [key: string]: Json };
      if (v.c !== undefined) out.__class__ = v.c;
      // A labelled pair whose label is a sensitive name: everything but the label masked.
      const label = v.e.find(
        ([key, value]) =>
          LABEL_KEYS.has(key) && typeof value === 'string' && m.rules.maskName(value),
      )?.[0];
      for (const [key, value] of v.e) {
        const hidden = label !== undefined ? key !== label : m.rules.maskName(key);
        out[key] = hidden ? REDACTED : maskTree(value, m);
      }
      if (v.m > 0) out['...'] = `${v.m} more`;
      return out;
    }
  }
}

/** A string as sent: at most {@link MAX_VALUE_LENGTH} characters, `...` when cut. */
function cut(s: string): string {
  if (s.length <= MAX_VALUE_LENGTH) return s;
  let end = MAX_VALUE_LENGTH - 3;
  const code = s.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--; // never split a surrogate pair
  return `${s.slice(0, end)}...`;
}

/** One variable as sent: a finite number as it is, anything else a string of at most 1024. */
function encodeValue(v: SnapValue, m: Masking): string | number {
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'string') return maskString(v, m);
  if (typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (v.t === 'long') return TOO_LONG_TEXT;
  if (v.t === 'leaf') return maskString(v.s, m);
  return cut(JSON.stringify(maskTree(v, m)));
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

const isSimple = (v: SnapValue) => v === null || typeof v !== 'object' || v.t === 'long';

/**
 * A frame's variables as sent, within what is left of the exception's budget: ignored
 * names dropped, masked names redacted without reading their value, simple values
 * before objects (each group by name), so the cheapest context survives a tight budget.
 */
export function encodeVariables(
  vars: ReadonlyArray<[string, SnapValue]>,
  rules: Rules,
  budget: { left: number; until?: number },
): Record<string, string | number> | undefined {
  budget.until ??= now() + MASK_TIME_LIMIT_MS;
  const m: Masking = { rules, until: budget.until };
  const simple: Array<[string, SnapValue]> = [];
  const complex: Array<[string, SnapValue]> = [];
  for (const entry of vars) {
    if (!rules.ignore(entry[0])) (isSimple(entry[1]) ? simple : complex).push(entry);
  }
  const byName = (a: [string, SnapValue], b: [string, SnapValue]) =>
    a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
  const out: Record<string, string | number> = Object.create(null);
  let any = false;
  for (const [name, value] of [...simple.sort(byName), ...complex.sort(byName)]) {
    if (budget.left <= 0) break;
    const encoded =
      name === CUT_NAME ? String(value) : rules.maskName(name) ? REDACTED : encodeValue(value, m);
    const size = utf8Length(name) + utf8Length(String(encoded));
    if (size > budget.left) continue;
    budget.left -= size;
    out[name] = encoded;
    any = true;
  }
  return any ? { ...out } : undefined;
}
