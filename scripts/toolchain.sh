#!/usr/bin/env bash
# Puts Node >= 24 and the pinned pnpm on PATH, then installs the workspace from
# the lockfile. Sourced by scripts/run.sh and .ci/run; needs only bash, npm and
# a Node of any version (the machine's Node 20 is enough to bootstrap).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="$repo_root/.tools"
node_wanted=24
pnpm_version="$(node -p "require('$repo_root/package.json').engines.pnpm" 2>/dev/null || echo 12.21.0)"

say() { printf '[toolchain] %s\n' "$*" >&2; }

node_major() { "${1:-node}" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ -x "$tools_dir/node_modules/.bin/node" ]; then
  export PATH="$tools_dir/node_modules/.bin:$PATH"
fi

if [ "$(node_major)" -lt "$node_wanted" ] || ! command -v pnpm >/dev/null 2>&1 \
  || [ "$(pnpm --version 2>/dev/null)" != "$pnpm_version" ]; then
  say "installing node@$node_wanted and pnpm@$pnpm_version into .tools/ (from the npm registry)"
  mkdir -p "$tools_dir"
  [ -f "$tools_dir/package.json" ] || echo '{"private":true}' > "$tools_dir/package.json"
  npm install --prefix "$tools_dir" --no-audit --no-fund --loglevel=error \
    "node@$node_wanted" "pnpm@$pnpm_version" >&2
  export PATH="$tools_dir/node_modules/.bin:$PATH"
fi
hash -r
say "node $(node --version), pnpm $(pnpm --version)"

# Install only when the lockfile changed since the last install.
stamp="$repo_root/node_modules/.toolchain-stamp"
want="$(cat "$repo_root/pnpm-lock.yaml" "$repo_root/package.json" | cksum)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "pnpm install --frozen-lockfile"
  (cd "$repo_root" && pnpm install --frozen-lockfile --reporter=append-only >&2)
  echo "$want" > "$stamp"
fi
