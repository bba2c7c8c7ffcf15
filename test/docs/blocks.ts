import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';

/** The repository root. */
export const ROOT = join(import.meta.dirname, '../..');

/** Where the packages' READMEs link to: this repository on GitHub. */
export const GITHUB = 'https://github.com/posthog-kit/posthog-kit';

/** How a block is checked. */
export type BlockKind =
  | 'install' // npm install lines: checked, not run
  | 'fragment' // marked as such: only its imports are checked
  | 'vitest' // a test file: run under Vitest
  | 'server' // listens: started on a free port, its routes requested, stopped with SIGTERM
  | 'worker' // `export default { fetch }`: its fetch is called
  | 'script' // runs to completion
  | 'shell'; // sh commands, run in the README's folder

/** One fenced code block of a README. */
export interface Block {
  /** The README, relative to the repository root. */
  readme: string;
  /** Line of the opening fence. */
  line: number;
  lang: 'ts' | 'js' | 'sh';
  code: string;
  kind: BlockKind;
  /** Why it is a fragment, from its `// fragment: ...` (or `# fragment: ...`) first line. */
  fragment: string | undefined;
}

const LANGS: Record<string, Block['lang']> = {
  ts: 'ts',
  typescript: 'ts',
  js: 'js',
  javascript: 'js',
  sh: 'sh',
  bash: 'sh',
  shell: 'sh',
};

/** README.md, packages/*\/README.md and examples/*\/README.md, relative to the root. */
export function readmes(): string[] {
  const inFolders = (folder: string) =>
    readdirSync(join(ROOT, folder))
      .map((name) => `${folder}/${name}/README.md`)
      .filter((path) => existsSync(join(ROOT, path)))
      .sort();
  return ['README.md', ...inFolders('packages'), ...inFolders('examples')];
}

const FRAGMENT = /^\s*(?:\/\/|#)\s*fragment:\s*(.*)$/;
const INSTALL = /^\s*(?:npm (?:install|i|add)|pnpm (?:add|install)|yarn add|bun add)\b/;

function kindOf(lang: Block['lang'], code: string, fragment: string | undefined): BlockKind {
  if (fragment !== undefined) return 'fragment';
  if (lang === 'sh') {
    const lines = code.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
    return lines.length > 0 && lines.every((l) => INSTALL.test(l)) ? 'install' : 'shell';
  }
  if (imports(code).includes('vitest')) return 'vitest';
  if (/^export default \{/m.test(code) && /\bfetch\s*\(/.test(code)) return 'worker';
  if (/\.listen\(|\bserve\(/.test(code)) return 'server';
  return 'script';
}

/** Every fenced ts, js and sh block of a README, in order. */
export function blocksOf(readme: string): Block[] {
  const text = readFileSync(join(ROOT, readme), 'utf8');
  const blocks: Block[] = [];
  const fence = /^```([\w-]*)[^\n]*\n([\s\S]*?)^```[ \t]*$/gm;
  for (const match of text.matchAll(fence)) {
    const lang = LANGS[match[1] ?? ''];
    if (!lang) continue;
    const code = match[2] ?? '';
    const first = code.split('\n', 1)[0] ?? '';
    const fragment = FRAGMENT.exec(first)?.[1]?.trim();
    blocks.push({
      readme,
      line: text.slice(0, match.index).split('\n').length,
      lang,
      code,
      kind: kindOf(lang, code, fragment),
      fragment,
    });
  }
  return blocks;
}

/** The module specifiers a block imports (static, dynamic, require). */
export function imports(code: string): string[] {
  const found = new Set<string>();
  const patterns = [
    /\bfrom\s+['"]([^'"]+)['"]/g,
    /^\s*import\s+['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) for (const m of code.matchAll(pattern)) found.add(m[1] as string);
  return [...found];
}

const BUILTINS = new Set(builtinModules);

/** The package a bare specifier names (`@scope/name/sub` is `@scope/name`), else undefined. */
export function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:')) {
    return undefined;
  }
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
  return BUILTINS.has(name) ? undefined : name;
}

/**
 * Packages a README tells the reader to install: in sh blocks and in inline code spans
 * (`npm install --save-dev vitest`), with npm, pnpm, yarn or bun.
 */
export function installedBy(readme: string): Set<string> {
  const text = readFileSync(join(ROOT, readme), 'utf8');
  const commands = [
    ...blocksOf(readme)
      .filter((b) => b.lang === 'sh')
      .flatMap((b) => b.code.split('\n')),
    ...[...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1] as string),
  ];
  const names = new Set<string>();
  for (const command of commands) {
    const match = /(?:npm (?:install|i|add)|pnpm add|yarn add|bun add)\s+(.*)$/.exec(command);
    if (!match) continue;
    for (const word of (match[1] as string).split(/\s+/)) {
      if (word === '' || word.startsWith('-')) continue;
      if (word.startsWith('#')) break;
      // `name@version` and `@scope/name@version`; prose such as `npm install ...` is no name
      const name = word.replace(/(?!^)@[^/]*$/, '');
      if (/^(@[a-z0-9][\w.~-]*\/)?[a-z0-9][\w.~-]*$/.test(name)) names.add(name);
    }
  }
  return names;
}

/** Flag keys a block reads, so that the emulator defines them (all on). */
export function flagKeys(code: string): string[] {
  const read =
    /\b(?:featureEnabled|getFeatureFlag|getFeatureFlagResult|getFeatureFlagPayload|isEnabled|getFlag)\(\s*['"]([^'"]+)['"]/g;
  return [...new Set([...code.matchAll(read)].map((m) => m[1] as string))];
}

/** Events a block captures by a literal name: each must reach the emulator. */
export function capturedEvents(code: string): string[] {
  return [
    ...new Set([...code.matchAll(/\bcapture\(\s*['"]([^'"]+)['"]/g)].map((m) => m[1] as string)),
  ];
}

/** Routes a server block defines (`app.get('/x', ...)`, `router.post(...)`), params filled in. */
export function routes(code: string): Array<{ method: string; path: string }> {
  const found = code.matchAll(/\.(get|post|put|patch|delete)\(\s*['"](\/[^'"]*)['"]/g);
  return [...found].map((m) => ({
    method: (m[1] as string).toUpperCase(),
    path: (m[2] as string).replace(/:\w+/g, '1'),
  }));
}

/** Markdown link targets of a README: `[text](target)`. */
export function links(readme: string): string[] {
  const text = readFileSync(join(ROOT, readme), 'utf8');
  return [...text.matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1] as string);
}
