import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** A runtime binary from its npm package, or why it cannot run on this machine. */
export type Binary = { path: string; version: string } | { skip: string };

// Each npm package ships its binaries as optional platform packages; its postinstall only links
// them (pnpm-workspace.yaml turns those scripts off), so the tests run the platform binary itself.
const PLATFORM_PACKAGES: Record<string, Record<string, [string, string]>> = {
  bun: {
    'linux-x64': ['@oven/bun-linux-x64', 'bin/bun'],
    'linux-arm64': ['@oven/bun-linux-aarch64', 'bin/bun'],
    'darwin-x64': ['@oven/bun-darwin-x64', 'bin/bun'],
    'darwin-arm64': ['@oven/bun-darwin-aarch64', 'bin/bun'],
  },
  deno: {
    'linux-x64': ['@deno/linux-x64-glibc', 'deno'],
    'linux-arm64': ['@deno/linux-arm64-glibc', 'deno'],
    'darwin-x64': ['@deno/darwin-x64', 'deno'],
    'darwin-arm64': ['@deno/darwin-arm64', 'deno'],
  },
  workerd: {
    'linux-x64': ['@cloudflare/workerd-linux-64', 'bin/workerd'],
    'linux-arm64': ['@cloudflare/workerd-linux-arm64', 'bin/workerd'],
    'darwin-x64': ['@cloudflare/workerd-darwin-64', 'bin/workerd'],
    'darwin-arm64': ['@cloudflare/workerd-darwin-arm64', 'bin/workerd'],
  },
};

const require = createRequire(import.meta.url);

/** Finds `name`'s binary for this platform and checks that it starts (`--version`). */
export function findBinary(name: 'bun' | 'deno' | 'workerd'): Binary {
  const platform = `${process.platform}-${process.arch}`;
  const entry = PLATFORM_PACKAGES[name]?.[platform];
  if (!entry) return { skip: `the ${name} npm package has no binary for ${platform} here` };
  const [pkg, file] = entry;
  let path: string;
  try {
    const main = createRequire(require.resolve(`${name}/package.json`));
    path = join(dirname(main.resolve(`${pkg}/package.json`)), file);
  } catch {
    return {
      skip: `${pkg} (the ${name} binary for ${platform}) is not installed: run pnpm install`,
    };
  }
  if (!existsSync(path)) return { skip: `${path} is missing from ${pkg}` };
  try {
    const version = execFileSync(path, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    return { path, version: version.split('\n')[0]?.trim() ?? '' };
  } catch (error) {
    // E.g. a glibc older than the binary needs, or a CPU without the instructions it uses.
    const detail = (error as { stderr?: string }).stderr?.trim() || (error as Error).message;
    return { skip: `${path} does not run on this machine: ${detail.split('\n')[0]}` };
  }
}
