import type { UserConfig } from 'tsdown';

/**
 * The build every package spreads: ESM + CJS with declarations, checked by
 * publint and are-the-types-wrong so package.json and output cannot drift.
 */
export const base = {
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  fixedExtension: true,
  dts: true,
  // Sources only: with the tests in the program, declarations land next to files outside dist.
  tsconfig: 'tsconfig.build.json',
  // No source maps: the output is unminified and reads like the sources, and maps (with the
  // sources inlined, else they point at files the tarball lacks) were over half of each package.
  sourcemap: false,
  clean: true,
  // Runtime-neutral output: the same files load on Node 20+, Bun, Deno and Workers.
  platform: 'neutral',
  target: 'es2022',
  publint: { level: 'suggestion', strict: true },
  attw: { profile: 'node16', level: 'error' },
  report: false,
} satisfies UserConfig;
