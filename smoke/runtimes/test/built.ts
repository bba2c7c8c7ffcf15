import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packages = fileURLToPath(new URL('../../../packages/', import.meta.url));

/** The most recently changed file under dir. */
function newest(dir: string): { path: string; mtimeMs: number } {
  let latest = { path: dir, mtimeMs: 0 };
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const candidate = entry.isDirectory()
      ? newest(path)
      : { path, mtimeMs: statSync(path).mtimeMs };
    if (candidate.mtimeMs > latest.mtimeMs) latest = candidate;
  }
  return latest;
}

/**
 * These tests run the built packages, as users get them (like smoke/node20). Fails with
 * what to do when a build is missing or older than its sources.
 */
export function assertBuilt(names: readonly string[] = ['core', 'hono', 'h3']): void {
  for (const name of names) {
    const dist = join(packages, name, 'dist', 'index.mjs');
    if (!existsSync(dist)) {
      throw new Error(`packages/${name} is not built: run \`pnpm build\` (npm test does it first)`);
    }
    const changed = newest(join(packages, name, 'src'));
    if (statSync(dist).mtimeMs < changed.mtimeMs) {
      const file = changed.path.slice(packages.length);
      throw new Error(`packages/${file} changed after the last build: run \`pnpm build\``);
    }
  }
}

/**
 * Optional packages that core and posthog-node import lazily, only when configured to use
 * them (core: a Redis store for the flag caches; posthog-node: e-mail rendering). A Worker
 * that does not use them never loads them, so bundles leave them out.
 */
export const LAZY_OPTIONAL = ['@keyv/redis', '@react-email/render'];
