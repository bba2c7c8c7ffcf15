import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The README's test command finds the machine's Node 20 and sets NODE20_BIN.
const node20 = process.env.NODE20_BIN;
const dir = fileURLToPath(new URL('..', import.meta.url));
const run = (file: string) =>
  JSON.parse(
    execFileSync(node20 as string, [file], { cwd: dir, encoding: 'utf8', timeout: 30_000 }),
  );

if (!node20 && process.env.CI) {
  throw new Error('CI needs Node >= 20.20 < 21 for the Node 20 smoke test (set NODE20_BIN)');
}

// Skipped only off CI on machines without Node 20: the built packages are still tested on Node 24.
describe.skipIf(!node20)('built packages on Node 20', () => {
  it('ESM: capture, a local and a remote flag, shutdown', () => {
    const out = run('smoke.mjs');
    expect(out.node).toMatch(/^v20\./);
    expect(out).toMatchObject({
      local: true,
      remote: true,
      distinctId: 'node20-esm',
      flagsAsked: 1,
    });
  });

  it('CJS: require() entries work the same', () => {
    const out = run('smoke.cjs');
    expect(out.node).toMatch(/^v20\./);
    expect(out).toMatchObject({ local: true, distinctId: 'node20-cjs' });
  });
});
