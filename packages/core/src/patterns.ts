// The regular expressions users give for code variables (mask and ignore patterns):
// JavaScript syntax plus what posthog-python's users write (inline flags such as `(?i)`,
// `(?P<name>...)`, `\A`, `\Z`), checked once so that none can backtrack
// catastrophically on the values it later runs on, and never turned into something
// else silently: a pattern that cannot be used as written is an error.
import safeRegex from 'safe-regex2';

/** Longest pattern accepted, in characters. */
export const MAX_PATTERN_LENGTH = 1_000;
// A bounded quantifier whose range is wider than this backtracks like an unbounded one.
const WIDE_RANGE = 16;

/** How a pattern is compiled. */
export interface PatternOptions {
  /**
   * Match case-insensitively whatever the pattern says (mask patterns are, as in
   * posthog-python).
   * @default false
   */
  ignoreCase?: boolean | undefined;
}

class PatternProblem extends Error {}

const fail = (why: string): never => {
  throw new PatternProblem(why);
};

// Letters JavaScript gives a meaning to after a backslash outside `u` mode; any other
// letter would silently match itself (`\A` would match "A").
const JS_ESCAPES = new Set('bBdDfnrsStvwWxuck0123456789');

interface Translated {
  source: string;
  flags: Set<string>;
}

interface Group {
  alternation: boolean;
  repeats: boolean;
}

/** Reads a quantifier at `i` (`*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`, Python's `{,m}`). */
function quantifierAt(
  s: string,
  i: number,
): { text: string; min: number; max: number; end: number } | undefined {
  const c = s[i];
  let text: string;
  let min: number;
  let max: number;
  let end: number;
  if (c === '*' || c === '+' || c === '?') {
    text = c;
    min = c === '+' ? 1 : 0;
    max = c === '?' ? 1 : Number.POSITIVE_INFINITY;
    end = i + 1;
  } else if (c === '{') {
    const m = /^\{(\d*)(,?)(\d*)\}/.exec(s.slice(i, i + 24));
    if (!m || (m[1] === '' && m[3] === '') || (m[1] === '' && m[2] === '')) return undefined;
    min = m[1] === '' ? 0 : Number(m[1]);
    max = m[2] === '' ? min : m[3] === '' ? Number.POSITIVE_INFINITY : Number(m[3]);
    text = `{${min}${m[2]}${m[3]}}`;
    end = i + m[0].length;
  } else {
    return undefined;
  }
  if (s[end] === '?') {
    text += '?';
    end++;
  } else if (s[end] === '+') {
    fail(`possessive quantifiers (${text}+) have no JavaScript equivalent`);
  }
  return { text, min, max, end };
}

/**
 * Python's syntax translated to JavaScript's, and the checks on the result: nested
 * repetition, repeated alternatives, more than one open-ended repetition (each of
 * those makes the time to match grow exponentially or polynomially with the input).
 */
function translate(pattern: string, check: boolean): Translated {
  const flags = new Set<string>();
  let s = pattern;
  // Python's global inline flags, at the start only (Python 3.11 rejects them elsewhere).
  for (let m = /^\(\?([a-zA-Z]+)\)/.exec(s); m; m = /^\(\?([a-zA-Z]+)\)/.exec(s)) {
    for (const f of m[1] as string) {
      if (f === 'i' || f === 's' || f === 'm' || f === 'x') flags.add(f);
      else if (f === 'a' || f === 'u') {
        // ASCII is JavaScript's default for \w, \d, \s; `u` (Unicode str) is Python 3's.
      } else if (f === 'L') fail('the (?L) flag (locale) has no JavaScript equivalent');
      else fail(`unknown inline flag "${f}"`);
    }
    s = s.slice(m[0].length);
  }
  const verbose = flags.delete('x');
  const multiline = flags.has('m');
  let out = '';
  const stack: Group[] = [{ alternation: false, repeats: false }];
  let openEnded = 0;
  // What the last atom was, for the quantifier that may follow it.
  let last: 'none' | 'atom' | 'group' = 'none';
  let lastGroup: Group | undefined;
  let i = 0;
  const quantify = (): boolean => {
    const q = quantifierAt(s, i);
    if (!q) return false;
    if (last === 'none') fail(`a quantifier (${q.text}) follows nothing`);
    if (q.max > 1 && check) {
      if (last === 'group' && lastGroup) {
        if (lastGroup.repeats) fail('a repeated group holds a quantifier (nested repetition)');
        if (lastGroup.alternation && q.max - q.min > WIDE_RANGE) {
          fail('a repeated group holds alternatives (use a character class, or repeat less)');
        }
      }
      if (q.max - q.min > WIDE_RANGE) {
        openEnded++;
        if (openEnded > 1) {
          fail(
            'more than one open-ended repetition (*, +, {n,}): the time to match grows with the input to a power',
          );
        }
      }
      for (const g of stack) g.repeats = true;
    }
    out += q.text;
    i = q.end;
    last = 'none';
    return true;
  };
  while (i < s.length) {
    const c = s[i] as string;
    if (verbose && /\s/.test(c)) {
      i++;
      continue;
    }
    if (verbose && c === '#') {
      while (i < s.length && s[i] !== '\n') i++;
      continue;
    }
    if (c === '\\') {
      const next = s[i + 1];
      if (next === undefined) fail('the pattern ends with a lone backslash');
      const n = next as string;
      if (n === 'A') out += multiline ? '(?<![\\s\\S])' : '^';
      else if (n === 'Z') out += multiline ? '(?![\\s\\S])' : '$';
      else if (n === 'a') out += '\\x07';
      else if ((n === 'p' || n === 'P') && s[i + 2] === '{') {
        const property = /^\\[pP]\{[\w=]*\}/.exec(s.slice(i, i + 64));
        if (!property) fail('a \\p{...} property is not closed');
        out += (property as RegExpExecArray)[0];
        i += (property as RegExpExecArray)[0].length - 2;
      } else if (/[A-Za-z]/.test(n) && !JS_ESCAPES.has(n)) {
        fail(`the escape \\${n} has no meaning in JavaScript (it would match "${n}" itself)`);
      } else if (n === 'k' && s[i + 2] !== '<') fail('\\k must name a group: \\k<name>');
      else out += `\\${n}`;
      i += 2;
      last = n === 'A' || n === 'Z' || n === 'b' || n === 'B' ? 'none' : 'atom';
      quantify();
      continue;
    }
    if (c === '[') {
      let j = i + 1;
      let body = '[';
      if (s[j] === '^') {
        body += '^';
        j++;
      }
      // Python: a `]` right after `[` or `[^` is a literal; JavaScript's `[]` is empty.
      if (s[j] === ']') {
        body += '\\]';
        j++;
      }
      for (; j < s.length && s[j] !== ']'; j++) {
        if (s[j] === '\\') {
          const n = s[j + 1];
          if (
            n !== undefined &&
            /[A-Za-z]/.test(n) &&
            !JS_ESCAPES.has(n) &&
            n !== 'p' &&
            n !== 'P'
          ) {
            fail(`the escape \\${n} has no meaning in JavaScript (it would match "${n}" itself)`);
          }
          body += `\\${n ?? ''}`;
          j++;
        } else if (s[j] === '[' && s[j + 1] === ':') {
          fail('POSIX classes ([:alpha:]) are not supported; write the class out');
        } else {
          body += s[j];
        }
      }
      if (j >= s.length) fail('a character class is not closed');
      out += `${body}]`;
      i = j + 1;
      last = 'atom';
      quantify();
      continue;
    }
    if (c === '(') {
      const rest = s.slice(i, i + 40);
      if (rest.startsWith('(?#')) {
        const end = s.indexOf(')', i);
        if (end < 0) fail('a (?#...) comment is not closed');
        i = end + 1;
        continue;
      }
      let open = '(';
      const named = /^\(\?P<([A-Za-z_]\w*)>/.exec(rest);
      const backref = /^\(\?P=([A-Za-z_]\w*)\)/.exec(rest);
      if (backref) {
        out += `\\k<${backref[1]}>`;
        i += backref[0].length;
        last = 'atom';
        quantify();
        continue;
      }
      if (named) open = `(?<${named[1]}>`;
      else if (rest.startsWith('(?>')) fail('atomic groups (?>...) have no JavaScript equivalent');
      else if (rest.startsWith('(?('))
        fail('conditional groups (?(...)) have no JavaScript equivalent');
      else if (/^\(\?[a-zA-Z]*-?[a-zA-Z]*\)/.test(rest)) {
        fail('inline flags (?i) are accepted at the start of the pattern only');
      } else {
        open = (
          /^\((?:\?(?:[:=!]|<[=!]|<[A-Za-z_$][\w$]*>|[a-z]*-?[a-z]+:))?/.exec(
            rest,
          ) as RegExpExecArray
        )[0];
        if (open === '(' && rest.startsWith('(?')) fail(`unknown group syntax ${rest.slice(0, 4)}`);
      }
      out += open;
      i += named ? named[0].length : open.length;
      stack.push({ alternation: false, repeats: false });
      last = 'none';
      continue;
    }
    if (c === ')') {
      if (stack.length === 1) fail('a group is closed that was never opened');
      const group = stack.pop() as Group;
      out += ')';
      i++;
      last = 'group';
      lastGroup = group;
      quantify();
      continue;
    }
    if (c === '|') {
      (stack[stack.length - 1] as Group).alternation = true;
      out += '|';
      i++;
      last = 'none';
      continue;
    }
    if (c === '^' || c === '$') {
      out += c;
      i++;
      last = 'none';
      continue;
    }
    if (c === '*' || c === '+' || c === '?') {
      if (!quantify()) fail(`a quantifier (${c}) follows nothing`);
      continue;
    }
    if (c === '{') {
      if (quantifierAt(s, i)) {
        quantify();
        continue;
      }
      // A brace that starts no quantifier is a literal in both languages.
      out += '\\{';
      i++;
      last = 'atom';
      quantify();
      continue;
    }
    if (c === '}') {
      out += '\\}';
      i++;
      last = 'atom';
      quantify();
      continue;
    }
    out += c;
    i++;
    last = 'atom';
    quantify();
  }
  if (stack.length > 1) fail('a group is not closed');
  return { source: out, flags };
}

/**
 * Patterns are searched for anywhere in a name or value, so a leading `.*` (with or
 * without `^`) and a trailing `.*` (with or without `$`) change nothing but the time
 * spent: `(?i).*bank.*` is searched as `bank`. (With `^`/`$` the match gets broader:
 * across lines too. For masking, broader is the safe side.)
 */
function dropSurroundingWildcards(source: string): string {
  let s = source;
  const leading = /^\^?\.\*\??/.exec(s);
  if (leading && !/^[*+?{]/.test(s.slice(leading[0].length))) s = s.slice(leading[0].length);
  const trailing = /\.\*\??\$?$/.exec(s);
  if (trailing && trailing.index > 0) {
    // Not an escaped dot (`\.*`), nor inside a class, nor the `.*` of a group.
    const before = s.slice(0, trailing.index);
    const backslashes = /\\*$/.exec(before)?.[0].length ?? 0;
    if (backslashes % 2 === 0 && !/\[[^\]]*$/.test(before)) s = before;
  } else if (trailing && trailing.index === 0) {
    s = '';
  }
  return s;
}

// What safe-regex2's parser (ret) reads: lookbehinds as lookaheads and flag groups as
// plain groups have the same repetition structure.
const forSafetyCheck = (source: string) =>
  source
    .replace(/\(\?<([=!])/g, '(?$1')
    .replace(/\(\?<[A-Za-z_$][\w$]*>/g, '(')
    .replace(/\\k<[A-Za-z_$][\w$]*>/g, 'x')
    .replace(/\(\?[a-z]*-?[a-z]+:/g, '(?:');

const quote = (source: string) =>
  JSON.stringify(source.length > 80 ? `${source.slice(0, 77)}...` : source);

function build(pattern: unknown, options: PatternOptions): RegExp {
  if (typeof pattern !== 'string') return fail(`expected a string, got ${typeof pattern}`);
  if (pattern === '') fail('an empty pattern would match everything');
  if (pattern.length > MAX_PATTERN_LENGTH) {
    fail(`longer than ${MAX_PATTERN_LENGTH} characters`);
  }
  const translated = translate(pattern, false);
  const source = dropSurroundingWildcards(translated.source);
  if (source === '') fail('it matches everything');
  // The checks run on what will be compiled, without the wildcards dropped above.
  translate(source, true);
  if (!safeRegex(forSafetyCheck(source), { limit: 25 })) {
    fail('it can backtrack catastrophically (safe-regex2 rejects it)');
  }
  const flags = new Set(translated.flags);
  if (options.ignoreCase) flags.add('i');
  // `\p{...}` means a Unicode property only in `u` mode; elsewhere it would match "p{...}".
  if (/\\[pP]\{/.test(source)) flags.add('u');
  try {
    return new RegExp(source, [...flags].sort().join(''));
  } catch (error) {
    const reason =
      error instanceof Error
        ? error.message.replace(/^Invalid regular expression: /, '')
        : String(error);
    return fail(`not a valid regular expression (${reason})`);
  }
}

/**
 * Why a mask or ignore pattern cannot be used, as a phrase that names it; undefined
 * when it can. Accepts JavaScript syntax and posthog-python's (`(?i)`, `(?s)`, `(?m)`,
 * `(?x)` at the start, `(?P<name>...)`, `(?P=name)`, `\A`, `\Z`); rejects what cannot
 * be used as written and what can backtrack catastrophically (checked with safe-regex2,
 * plus repeated alternatives and more than one open-ended repetition).
 */
export function patternProblem(pattern: unknown): string | undefined {
  try {
    build(pattern, {});
    return undefined;
  } catch (error) {
    const shown = typeof pattern === 'string' ? `the pattern ${quote(pattern)}` : 'a pattern';
    return `${shown} cannot be used: ${error instanceof Error ? error.message : String(error)}`;
  }
}

const cache = new Map<string, RegExp>();

/**
 * The RegExp a mask or ignore pattern stands for (memoised). Throws a TypeError whose
 * message is {@link patternProblem}'s when the pattern cannot be used. The RegExp has
 * no `g` or `y` flag, so `test` keeps no state between calls.
 */
export function compilePattern(pattern: string, options: PatternOptions = {}): RegExp {
  const key = `${options.ignoreCase ? 'i' : '-'}${pattern}`;
  const hit = cache.get(key);
  if (hit) return hit;
  let regex: RegExp;
  try {
    regex = build(pattern, options);
  } catch (error) {
    throw new TypeError(
      `[posthog-kit] ${patternProblem(pattern) ?? (error instanceof Error ? error.message : String(error))}`,
    );
  }
  if (cache.size >= 256) cache.clear();
  cache.set(key, regex);
  return regex;
}
