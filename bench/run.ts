// `npm run bench [-- suite] [options]`: the overhead suite by default.
//   overhead   per framework: bare, ours, posthog-node's own integration (BENCHMARKS.md)
//   memory     1,000,000 requests per adapter: heap, timers, listeners
//   profile    a CPU profile per configuration: where per-request time goes
// Each suite's file documents its options; other bench/*.ts files run directly with node.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [suite = 'overhead', ...rest] = process.argv.slice(2);
const name = suite.startsWith('--') ? 'overhead' : suite;
const args = suite.startsWith('--') ? [suite, ...rest] : rest;
const file = fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
if (!existsSync(file)) {
  console.error(`no bench suite "${name}": see bench/README.md`);
  process.exit(2);
}
const result = spawnSync(process.execPath, [file, ...args], { stdio: 'inherit' });
process.exit(result.status ?? 1);
