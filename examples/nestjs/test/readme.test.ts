// The package README shows this example's files: each block that names one is that file,
// as it is, so what the README shows is what these tests run.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

const root = new URL('../../../', import.meta.url);
const readme = readFileSync(new URL('packages/nestjs/README.md', root), 'utf8');
const shown = [
  ...readme.matchAll(/^```ts\n\/\/ fragment: (examples\/nestjs\/\S+)[^\n]*\n([\s\S]*?)^```$/gm),
];

it('the README shows the example files', () => {
  expect(shown.map((m) => m[1])).toEqual([
    'examples/nestjs/src/app.module.ts',
    'examples/nestjs/src/signup.controller.ts',
    'examples/nestjs/src/reports.service.ts',
    'examples/nestjs/src/main.ts',
    'examples/nestjs/test/app.test.ts',
  ]);
});

it.each(shown.map((m) => [m[1] as string, m[2] as string]))(
  '%s is as the README shows it',
  (file, code) => {
    expect(code).toBe(readFileSync(new URL(file, root), 'utf8'));
  },
);
