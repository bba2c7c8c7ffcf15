// Where every suite writes its figures: bench/results/<name>-<time>.json, with the machine's
// core count and Node version.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';

/** Writes the run's figures to bench/results/ and says where. */
export function save(name: string, data: object): void {
  const dir = fileURLToPath(new URL('../results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  const figures = { cores: cpus().length, node: process.versions.node, ...data };
  writeFileSync(file, `${JSON.stringify(figures, null, 2)}\n`);
  console.error(`results written to ${file}`);
}
