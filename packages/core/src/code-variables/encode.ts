// Masking and the wire format of code variables, as posthog-python sends them: a frame's
// `code_variables` maps each name to a finite number or a string (objects as JSON).
import {
  CODE_VARIABLES_REDACTED_VALUE as REDACTED,
  CODE_VARIABLES_TOO_LONG_VALUE as TOO_LONG_TEXT,
} from '../frames.ts';
import { MAX_STRING_LENGTH, type SnapValue } from './snapshot.ts';

/** A value (a string, or an object's JSON) is cut to this many characters. */
export const MAX_VALUE_LENGTH = 1_024;
/** Names and values of all the variables of one exception, in UTF-8 bytes. */
export const MAX_BYTES_PER_EXCEPTION = 10 * 1024;

/** The masking of one capture, compiled. */
export interface Rules {
  /** Whether a name (or a string value) must be masked. */
  mask(text: string): boolean;
  /** Whether a variable name is dropped. */
  ignore(name: string): boolean;
}

const compiled = new Map<string, RegExp[]>();

function compile(patterns: readonly string[], flags: string): RegExp[] {
  const key = `${flags}\u0000${patterns.join('\u0000')}`;
  let regexes = compiled.get(key);
  if (!regexes) {
    regexes = patterns.map((p) => {
      try {
        return new RegExp(p, flags);
      } catch {
        // A pattern that is not a valid regex (set per context, unchecked) still masks as text.
        return new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), flags);
      }
    });
    if (compiled.size >= 100) compiled.clear();
    compiled.set(key, regexes);
  }
  return regexes;
}

const anyMatch = (regexes: RegExp[]) => (text: string) => {
  for (const r of regexes) if (r.test(text)) return true;
  return false;
};

/** Mask patterns are case-insensitive (posthog-python's `(?i)`); ignore patterns are as written. */
export function compileRules(
  maskPatterns: readonly string[],
  ignorePatterns: readonly string[],
): Rules {
  return {
    mask: anyMatch(compile(maskPatterns, 'i')),
    ignore: anyMatch(compile(ignorePatterns, '')),
  };
}

// Credential formats with a distinctive shape, matched whatever the variable is called.
const KNOWN_SECRETS = new RegExp(
  [
    /eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{4,}/, // JWT
    /\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b/, // AWS key ids
    /\bAIza[\w-]{35}/, // Google API key
    /\bya29\.[\w-]{20,}/, // Google OAuth token
    /\bgh[pousr]_[A-Za-z0-9]{30,}/, // GitHub
    /\bgithub_pat_\w{20,}/,
    /\bglpat-[\w-]{20,}/, // GitLab
    /\bxox[abeoprs]-[\w-]{10,}/, // Slack
    /\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}/, // Stripe
    /\bsk-(?:ant-|proj-)?[\w-]{20,}/, // Anthropic, OpenAI
    /\bhf_[A-Za-z0-9]{30,}/, // Hugging Face
    /\bnpm_[A-Za-z0-9]{36}/, // npm
    /\bph[cxs]_[A-Za-z0-9]{20,}/, // PostHog
    /\bSG\.[\w-]{20,}\.[\w-]{20,}/, // SendGrid
    /\b[Bb]earer\s+[\w\-.~+/]{16,}/,
    /\bBasic\s+[A-Za-z0-9+/]{16,}={0,2}/,
  ]
    .map((r) => r.source)
    .join('|'),
);
const PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;
// A Cookie header (or one cookie) whose value is long enough to be a session id.
const COOKIE = /^[\w.-]+=[^;\s]{16,}(?:;\s*[\w.-]+=[^;]*)*$/;
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]{0,30}:\/\/)[^\s/?#@]+@/gi;
// HTTP headers that carry credentials, whatever the mask patterns (a request object in a
// frame holds them, as keys of `headers` or as name/value pairs in `rawHeaders`).
const CREDENTIAL_HEADER = /^(?:(?:set-)?cookie|x-api-key|x-auth-token|proxy-authorization)$/i;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEX = /^[0-9a-f]+$/i;

/** Long, unbroken, varied, high-entropy text: a key or a token, whatever it is called. */
function highEntropy(s: string): boolean {
  if (s.length < 20 || s.length > 512 || /[\s()[\]{}<>'"`,;]/.test(s)) return false;
  if (s.includes('://') || s.includes('\\') || /[a-z]+\/[a-z]+/.test(s)) return false;
  if (UUID.test(s) || HEX.test(s)) return false;
  const classes =
    Number(/[a-z]/.test(s)) +
    Number(/[A-Z]/.test(s)) +
    Number(/[0-9]/.test(s)) +
    Number(/[^A-Za-z0-9]/.test(s));
  if (classes < 3) return false;
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    bits -= p * Math.log2(p);
  }
  return bits >= 3.8;
}

/** A name whose value is masked: it matches a mask pattern, or names a credential header. */
function sensitiveName(name: string, rules: Rules): boolean {
  return rules.mask(name) || CREDENTIAL_HEADER.test(name);
}

/** Whether a value looks like a credential (known token formats, private keys, entropy). */
export function looksLikeSecret(s: string): boolean {
  if (s.length < 16) return false;
  if (PRIVATE_KEY.test(s)) return true;
  return KNOWN_SECRETS.test(s) || COOKIE.test(s) || highEntropy(s);
}

/** A string value as sent: masked by the rules, by its look, and credentials cut out of URLs. */
export function maskString(s: string, rules: Rules): string {
  if (s.length > MAX_STRING_LENGTH) return TOO_LONG_TEXT;
  if (rules.mask(s) || looksLikeSecret(s)) return REDACTED;
  return s.includes('://') ? s.replace(URL_CREDENTIALS, (_, scheme) => `${scheme}${REDACTED}@`) : s;
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

function maskTree(v: SnapValue, rules: Rules): Json {
  if (typeof v === 'string') return maskString(v, rules);
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'boolean' || v === null) return v;
  if (v === undefined) return 'undefined';
  switch (v.t) {
    case 'long':
      return TOO_LONG_TEXT;
    case 'leaf':
      return maskString(v.s, rules);
    case 'arr': {
      // In a [name, value, name, value] list (rawHeaders, entries), a masked name masks its value.
      const items: Json[] = [];
      let maskNext = false;
      for (const item of v.i) {
        items.push(maskNext ? REDACTED : maskTree(item, rules));
        maskNext = typeof item === 'string' && sensitiveName(item, rules);
      }
      if (v.m > 0) items.push(`... ${v.m} more`);
      return items;
    }
    case 'obj': {
      // No prototype: a key named __proto__ stays a key.
      const out = Object.create(null) as { [key: string]: Json };
      if (v.c !== undefined) out.__class__ = v.c;
      for (const [key, value] of v.e) {
        out[key] = sensitiveName(key, rules) ? REDACTED : maskTree(value, rules);
      }
      if (v.m > 0) out['...'] = `${v.m} more`;
      return out;
    }
  }
}

function cut(s: string): string {
  if (s.length <= MAX_VALUE_LENGTH) return s;
  let end = MAX_VALUE_LENGTH - 3;
  const code = s.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--; // never split a surrogate pair
  return `${s.slice(0, end)}...`;
}

/** One variable as sent: a finite number as it is, anything else a string of at most 1024. */
export function encodeValue(v: SnapValue, rules: Rules): string | number {
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'string') return cut(maskString(v, rules));
  if (typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (v.t === 'long') return TOO_LONG_TEXT;
  if (v.t === 'leaf') return cut(maskString(v.s, rules));
  return cut(JSON.stringify(maskTree(v, rules)));
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
  budget: { left: number },
): Record<string, string | number> | undefined {
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
    const encoded = sensitiveName(name, rules) ? REDACTED : encodeValue(value, rules);
    const size = utf8Length(name) + utf8Length(String(encoded));
    if (size > budget.left) continue;
    budget.left -= size;
    out[name] = encoded;
    any = true;
  }
  return any ? { ...out } : undefined;
}
