#!/usr/bin/env bash
# The README's commands. Each installs what it needs (Node 24 and pnpm into .tools/,
# the workspace from the lockfile), then runs:
#   demo   the worker example against the local PostHog emulator (or PostHog itself
#          when POSTHOG_PROJECT_API_KEY is set), printing what PostHog received
#   test   every test (builds first; starts its own redis-server)
#   bench  the benchmarks in bench/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/toolchain.sh

say() { printf '[%s] %s\n' "$cmd" "$*" >&2; }

# The Node 20 smoke test runs the built packages on the machine's own Node 20.
find_node20() {
  local candidate
  for candidate in "${NODE20_BIN:-}" /usr/bin/node /usr/local/bin/node /bin/node; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    if "$candidate" -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a===20&&b>=20?0:1)' 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
}

ensure_redis() {
  command -v redis-server >/dev/null 2>&1 && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing redis-server from apt (the Redis tests start their own server)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2 \
      || say "could not install redis-server; the Redis tests will say how"
  fi
}

cmd="${1:-}"
shift || true
case "$cmd" in
  demo)
    # The build's ~150 lines only when it fails: the demo's output is the result.
    build_log="$(mktemp)"
    if ! pnpm -s build >"$build_log" 2>&1; then
      cat "$build_log" >&2
      rm -f "$build_log"
      say "FAILED: the build (output above)"
      exit 1
    fi
    rm -f "$build_log"
    exec node examples/worker/src/demo.ts "$@"
    ;;
  test)
    ensure_redis
    node20="$(find_node20 || true)"
    if [ -n "$node20" ]; then export NODE20_BIN="$node20"; fi
    pnpm -s build >&2
    log="$(mktemp)"
    report="$(mktemp)"
    set +e
    pnpm -s vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    set -e
    # No key in anything the whole suite printed: keys of the tests and the emulator included.
    if grep -nE 'ph[cxs]_[A-Za-z0-9_-]{6,}' "$log" >&2; then
      say "FAILED: the lines above print an API key"
      status=1
    fi
    node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const skipped = r.numPendingTests + r.numTodoTests;
      console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
    ' "$report" || true
    rm -f "$log" "$report"
    exit "$status"
    ;;
  bench)
    pnpm -s build >&2
    exec node bench/run.ts "$@"
    ;;
  *)
    echo "usage: scripts/run.sh demo|test|bench [args]" >&2
    exit 2
    ;;
esac
