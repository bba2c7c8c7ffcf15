// Mask and ignore patterns (issue 13, items 3 and 11): what is accepted, what is
// translated from posthog-python's syntax, what is refused and why, and that whatever is
// accepted matches the longest input it will see in bounded time.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePattern, patternProblem } from '../src/patterns.ts';

const matches = (pattern: string, text: string, ignoreCase = true) =>
  compilePattern(pattern, { ignoreCase }).test(text);

describe('patterns: posthog-python syntax', () => {
  it('leading inline flags are translated, not matched as text', () => {
    // posthog-python's own default list is written this way.
    expect(matches('(?i)password', 'DB_PASSWORD', false)).toBe(true);
    expect(matches('(?i).*bank.*', 'bankAccount')).toBe(true);
    expect(matches('(?i).*bank.*', '(?i).*bank.*')).toBe(true);
    expect(matches('(?i).*bank.*', 'iban')).toBe(false);
    expect(matches('(?s)begin.end', 'begin\nend')).toBe(true);
    expect(matches('(?m)^token$', 'a\ntoken\nb')).toBe(true);
    expect(matches('(?x) api _ key  # the API key', 'my_api_key')).toBe(true);
    expect(matches('(?ai)secret', 'SECRET', false)).toBe(true);
    expect(matches('(?i)(?s)a.b', 'A\nB', false)).toBe(true);
  });

  it('named groups, backreferences, \\A and \\Z, {,n} and a leading ] in a class', () => {
    expect(matches('(?P<p>ab)-(?P=p)', 'ab-ab')).toBe(true);
    expect(matches('(?P<p>ab)-(?P=p)', 'ab-ba')).toBe(false);
    expect(matches('\\Apin\\Z', 'pin')).toBe(true);
    expect(matches('\\Apin\\Z', 'spin')).toBe(false);
    expect(matches('(?m)\\Apin\\Z', 'x\npin')).toBe(false);
    expect(matches('^x{,2}$', 'xx')).toBe(true);
    expect(matches('^x{,2}$', 'xxx')).toBe(false);
    expect(matches('[]x]', ']')).toBe(true);
    expect(matches('a(?#a comment)b', 'ab')).toBe(true);
  });

  it('JavaScript syntax works as written, ignore patterns keep their case', () => {
    expect(matches('(?<=user_)pin', 'user_pin')).toBe(true);
    expect(matches('^__', '__proto')).toBe(true);
    expect(matches('^Tmp', 'tmpFile', false)).toBe(false);
    expect(matches('\\p{Lu}{3}', 'ABC', false)).toBe(true);
    expect(compilePattern('token').flags).toBe('');
    expect(compilePattern('token', { ignoreCase: true }).flags).toBe('i');
  });
});

describe('patterns: refused, with the reason', () => {
  const refused: Array<[string, RegExp]> = [
    ['^(\\w+_)*token$', /nested repetition/],
    ['(a+)+$', /nested repetition/],
    ['(a|aa)*b', /repeated group holds alternatives/],
    ['(\\w|\\d)+$', /repeated group holds alternatives/],
    ['\\w+_\\w+_token', /more than one open-ended repetition/],
    ['a.*b.*c', /more than one open-ended repetition/],
    ['x(?i)y', /at the start of the pattern only/],
    ['(?L)token', /locale/],
    ['\\Qtoken\\E', /\\Q has no meaning in JavaScript/],
    ['\\z', /\\z has no meaning/],
    ['a++', /possessive/],
    ['(?>a)', /atomic/],
    ['(?(1)a|b)', /conditional/],
    ['[[:alpha:]]', /POSIX/],
    ['(unclosed', /not closed/],
    ['[unclosed', /not closed/],
    ['*token', /follows nothing/],
    ['.*', /matches everything/],
    ['', /empty pattern/],
    ['a'.repeat(1_001), /longer than 1000/],
  ];
  it.each(refused)('%s', (pattern, reason) => {
    const problem = patternProblem(pattern);
    expect(problem).toMatch(reason);
    expect(problem).toMatch(/^the pattern ".*" cannot be used: /s);
    expect(() => compilePattern(pattern)).toThrow(TypeError);
    expect(() => compilePattern(pattern)).toThrow(`[posthog-kit] ${problem}`);
  });

  it('non-strings are refused', () => {
    expect(patternProblem(42)).toBe('a pattern cannot be used: expected a string, got number');
  });

  it('what JavaScript itself rejects is refused with its reason', () => {
    expect(patternProblem('(?<n>a)(?<n>b)')).toMatch(/not a valid regular expression \(.+\)/);
  });
});

describe('patterns: bounded time', () => {
  // Inputs that make backtracking patterns slow: long runs of a word character, with and
  // without the suffix the pattern looks for.
  const hostile = ['a'.repeat(1_024), `${'a_'.repeat(512)}!`, `${'a'.repeat(1_023)}b`];

  it('the catastrophic pattern of the issue is refused; one open-ended repetition stays fast on 1024 characters', () => {
    expect(patternProblem('^(\\w+_)*token$')).toBeDefined();
    for (const pattern of ['a.*b', '(?i).*bank.*', '^\\w+x$', '[a-z]+_token']) {
      const regex = compilePattern(pattern, { ignoreCase: true });
      const started = performance.now();
      for (const text of hostile) regex.test(text);
      // Generous: about a millisecond on the project's machine.
      expect(performance.now() - started).toBeLessThan(500);
    }
  });

  it('property: any pattern that is accepted matches hostile 1024-character inputs in bounded time', () => {
    const atom = fc.constantFrom('a', 'b', '_', '\\w', '\\d', '.', '[a-z]', '[^_]', '(?:ab)');
    const quantifier = fc.constantFrom('', '', '*', '+', '?', '{2}', '{1,3}', '{2,}', '*?');
    const piece = fc
      .tuple(atom, quantifier)
      .map(([a, q]) => `${a}${q}`)
      .chain((p) =>
        fc.oneof(
          fc.constant(p),
          fc.tuple(fc.constant(p), quantifier).map(([x, q]) => `(${x})${q}`),
          fc.tuple(fc.constant(p), atom, quantifier).map(([x, y, q]) => `(${x}|${y})${q}`),
        ),
      );
    const pattern = fc
      .tuple(
        fc.constantFrom('', '^', '(?i)'),
        fc.array(piece, { minLength: 1, maxLength: 5 }),
        fc.constantFrom('', '$'),
      )
      .map(([start, pieces, end]) => `${start}${pieces.join('')}${end}`);
    let accepted = 0;
    fc.assert(
      fc.property(pattern, (source) => {
        if (patternProblem(source) !== undefined) return;
        accepted++;
        const regex = compilePattern(source, { ignoreCase: true });
        const started = performance.now();
        for (const text of hostile) regex.test(text);
        // Catastrophic patterns take seconds to hours here; accepted ones milliseconds.
        expect(performance.now() - started).toBeLessThan(500);
      }),
      { numRuns: 400 },
    );
    expect(accepted).toBeGreaterThan(50);
  });
});
