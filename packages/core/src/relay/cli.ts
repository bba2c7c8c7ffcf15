#!/usr/bin/env node
// posthog-kit-relay: keeps the shared flag definitions fresh for store-only processes.
//   posthog-kit-relay [--port 8787] [--host 127.0.0.1]
// Settings from POSTHOG_* (POSTHOG_PROJECT_API_KEY, POSTHOG_PERSONAL_API_KEY, POSTHOG_REDIS_URL,
// POSTHOG_HOST, POSTHOG_POLL_INTERVAL...). Health: GET http://<host>:<port>/healthz.
import { startRelay } from './index.ts';

const USAGE = `usage: posthog-kit-relay [--port <port, 0 for a free one>] [--host <interface>]

Keeps the shared flag definitions (POSTHOG_REDIS_URL) fresh for processes that run with
POSTHOG_FLAG_DEFINITIONS_SOURCE=store. Needs POSTHOG_PROJECT_API_KEY, POSTHOG_PERSONAL_API_KEY
and POSTHOG_REDIS_URL; reads every other POSTHOG_* setting as a kit does.
Health: GET /healthz answers 200 while the definitions in the store are fresh, else 503.
  --port   port of the health endpoint (default 8787)
  --host   interface of the health endpoint (default 127.0.0.1)`;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function main(): void {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const portText = arg('port') ?? '8787';
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    console.error(
      `[posthog-kit-relay] --port: expected a port number, got "${portText}"\n${USAGE}`,
    );
    process.exitCode = 2;
    return;
  }
  startRelay({ port, host: arg('host') ?? '127.0.0.1' }).then(
    (relay) => {
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        console.error(`[posthog-kit-relay] ${signal}: releasing the lease and stopping`);
        relay.close(5_000).then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      if (relay.url) console.log(`ready ${JSON.stringify({ url: relay.url })}`);
    },
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : String(error));
      process.exitCode = 2;
    },
  );
}

main();
