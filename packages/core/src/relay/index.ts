// The relay: a process that only keeps the shared flag definitions fresh (with the
// personal key), so that store-only processes (POSTHOG_FLAG_DEFINITIONS_SOURCE=store)
// never need the key nor PostHog. Health on a local HTTP endpoint. Node only: its own entry.
import { createServer, type Server } from 'node:http';
import type { FlagsStatus } from '../flags/index.ts';
import { createPostHogKit, kitParts, type PostHogKit } from '../kit.ts';
import type { PostHogKitOptions } from '../settings.ts';

export interface RelayOptions {
  /** The kit's options; settings not given come from `POSTHOG_*` as for any kit. @default {} */
  kit?: PostHogKitOptions;
  /** Port of the health endpoint; 0 picks a free one; `false`: none. @default 8787 */
  port?: number | false;
  /** Interface of the health endpoint. @default '127.0.0.1' */
  host?: string;
  /** Where the relay's own lines go. @default console.error */
  log?: (line: string) => void;
}

/** A running relay. */
export interface Relay {
  readonly kit: PostHogKit;
  /** The health endpoint (`GET /healthz`), when there is one. */
  readonly url: string | undefined;
  /** The flags status and whether it is healthy (the store answers, definitions fresher than the max age). */
  health(): { ok: boolean; status: FlagsStatus };
  /** Stops serving, releases the lease if it holds it, and shuts the kit down. */
  close(timeoutMs?: number): Promise<void>;
}

const PREFIX = '[posthog-kit-relay]';

/** What is missing for a relay to work, as one message; undefined when nothing is. */
function problemOf(kit: PostHogKit, options: PostHogKitOptions): string | undefined {
  const s = kit.settings;
  const missing: string[] = [];
  if (s.apiKey === undefined) missing.push('POSTHOG_PROJECT_API_KEY (the project key)');
  if (s.personalApiKey === undefined) {
    missing.push(
      'POSTHOG_PERSONAL_API_KEY (a personal or project secret key: the relay fetches definitions)',
    );
  }
  if (s.redisUrl === undefined && options.cache === undefined) {
    missing.push('POSTHOG_REDIS_URL (the store the other processes read)');
  }
  if (!s.enabled && s.apiKey !== undefined) missing.push('POSTHOG_ENABLED is false');
  return missing.length > 0 ? `cannot relay flag definitions: ${missing.join('; ')}` : undefined;
}

/**
 * Starts a relay: a kit with the personal key and the shared store that takes part in the
 * leader election like any kit (so several relays, or relays and ordinary kits, share one
 * lease: one fetches, the others stand by), and a health endpoint: `GET /healthz` answers
 * 200 with the flags status as JSON while the store answers and the definitions in it are
 * fresher than `POSTHOG_FLAG_DEFINITIONS_MAX_AGE`, else 503.
 */
export async function startRelay(options: RelayOptions = {}): Promise<Relay> {
  const log = options.log ?? ((line: string) => console.error(line));
  const kitOptions: PostHogKitOptions = {
    ...options.kit,
    // A relay fetches, whatever the environment says the other processes do.
    flagDefinitionsSource: 'poll',
    shutdownHooks: false,
  };
  const kit = createPostHogKit(kitOptions);
  const problem = problemOf(kit, kitOptions);
  if (problem) {
    await kit.shutdown(1_000);
    throw new Error(`${PREFIX} ${problem}`);
  }
  const flags = kitParts(kit)?.flags;
  const maxAgeMs = kit.settings.flagDefinitionsMaxAgeMs;
  const health = () => {
    const status = flags?.status() as FlagsStatus;
    const ok =
      status !== undefined &&
      status.source !== 'none' &&
      status.store?.failing === false &&
      status.ageMs !== undefined &&
      status.ageMs <= maxAgeMs;
    return { ok, status };
  };
  let server: Server | undefined;
  let url: string | undefined;
  const listenPort = options.port === false ? undefined : (options.port ?? 8787);
  if (listenPort !== undefined) {
    server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' || (path !== '/healthz' && path !== '/')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":"not found: GET /healthz"}');
        return;
      }
      const { ok, status } = health();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok, ...status }));
    });
    const host = options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server?.once('error', reject);
      server?.listen(listenPort, host, () => resolve());
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : listenPort;
    url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/healthz`;
  }
  // Load at once: the first fetch (or read) starts now, not at the first evaluation.
  void kit.client?.reloadFeatureFlags().catch(() => {});
  log(
    `${PREFIX} keeping the shared flag definitions fresh for ${kit.settings.host} (${flags?.store?.description ?? 'no store'}, poll every ${kit.settings.pollIntervalMs / 1000} s)${url ? `; health on ${url}` : ''}`,
  );
  let closing: Promise<void> | undefined;
  return {
    kit,
    url,
    health,
    close(timeoutMs = 5_000) {
      closing ??= (async () => {
        await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
        server?.closeAllConnections?.();
        await kit.shutdown(timeoutMs);
      })();
      return closing;
    },
  };
}
