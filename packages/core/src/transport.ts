import { describeError, type ErrorReporter } from './errors.ts';

type Endpoint = 'batch' | 'flags' | 'definitions' | 'other';

function endpointOf(url: string): Endpoint {
  if (url.includes('/flags/definitions') || url.includes('/local_evaluation')) return 'definitions';
  if (url.includes('/flags/?') || url.includes('/decide/')) return 'flags';
  if (url.includes('/batch/') || url.includes('/i/v0/e')) return 'batch';
  return 'other';
}

/** What each endpoint failing means for the app, said once per outage. */
const CONSEQUENCE: Record<Endpoint, string> = {
  batch: 'events stay queued (up to maxQueueSize) and are sent when it answers again',
  flags: 'flags answer their defaults until it answers again',
  definitions:
    'local evaluation keeps the definitions it has (or asks /flags) until it answers again',
  other: 'retrying later',
};

/**
 * The fetch posthog-node and the kit use. It reports each PostHog failure once per
 * outage and per endpoint through the error mode (posthog-node would report every
 * attempt), says when PostHog answers again, and counts failed flag requests so a flag
 * look-up that came back empty can tell "PostHog failed" from "no such flag".
 *
 * Two answers are reshaped for posthog-node: a batch answered "try later" (408, 429,
 * 5xx) becomes a network error, because posthog-node drops a batch after an HTTP error
 * but keeps it queued after a network error, so an outage costs no event that fits
 * the queue; and a 402 (quota) on flag definitions becomes an empty set, which is what
 * posthog-node does with it anyway (flags fall back to their defaults), without its
 * extra console line.
 */
export class Transport {
  /** Failed `/flags` requests since the kit started (network errors and non-2xx answers). */
  flagFailures = 0;
  /** Failed flag definitions requests (network errors and answers other than 2xx and 304). */
  definitionsFailures = 0;
  readonly fetch: typeof fetch;
  private readonly reporter: ErrorReporter;
  private readonly host: string;
  private projectKeyOk = false;
  private probing: Promise<void> | undefined;
  private readonly probe: () => Promise<boolean | undefined>;

  constructor(
    base: typeof fetch | undefined,
    reporter: ErrorReporter,
    host: string,
    projectApiKey?: string,
  ) {
    this.reporter = reporter;
    this.host = host;
    const inner = base ?? ((input, init) => globalThis.fetch(input, init));
    this.probe = projectApiKey
      ? () => probeProjectKey(inner, host, projectApiKey)
      : () => Promise.resolve(undefined);
    this.fetch = async (input, init) => {
      const endpoint = endpointOf(urlOf(input));
      let res: Response;
      try {
        res = await inner(input, init);
      } catch (error) {
        if (endpoint === 'flags') this.flagFailures++;
        if (endpoint === 'definitions') this.definitionsFailures++;
        this.down(endpoint, describeError(error));
        throw error;
      }
      if (res.ok || res.status === 304) {
        // A project-key request that works: a refused definitions request is the personal key's.
        if (endpoint !== 'definitions' && endpoint !== 'other') this.projectKeyOk = true;
        this.up(endpoint);
        return res;
      }
      if (endpoint === 'flags') this.flagFailures++;
      if (endpoint === 'definitions') this.definitionsFailures++;
      return this.refused(endpoint, res);
    };
  }

  private async refused(endpoint: Endpoint, res: Response): Promise<Response> {
    const status = res.status;
    if (status === 401 || status === 403) {
      this.rejected(endpoint, status);
      return res;
    }
    if (endpoint === 'batch') {
      if (status === 408 || status === 429 || status >= 500) {
        this.down(endpoint, `HTTP ${status}`);
        await res.body?.cancel().catch(() => {});
        throw new TemporaryFailure(status);
      }
      // 413 is posthog-node's to handle (it splits the batch); other refusals are final.
      if (status !== 413) {
        this.reporter.outage(
          'posthog:batch',
          undefined,
          `PostHog rejected a batch (HTTP ${status}); its events were dropped`,
        );
      }
      return res;
    }
    if (endpoint === 'definitions' && status === 402) {
      this.reporter.outage(
        'posthog:definitions',
        undefined,
        `flag definitions: ${this.host} answered HTTP 402, the feature flag quota is exceeded; flags answer their defaults until it is lifted`,
      );
      await res.body?.cancel().catch(() => {});
      return Response.json({ flags: [], group_type_mapping: {}, cohorts: {} });
    }
    this.down(endpoint, `HTTP ${status}`);
    return res;
  }

  /**
   * A key PostHog refused: one line, naming the key that is wrong. `/batch/` and `/flags/`
   * carry only the project key; a definitions request carries both, so its refusal waits
   * a moment for a project-key request to tell which one it is.
   */
  private rejected(endpoint: Endpoint, status: number): void {
    if (endpoint !== 'definitions' || this.projectKeyOk) {
      this.blame(endpoint === 'definitions' ? 'personal' : 'project', status);
      return;
    }
    // A definitions request carries both keys: one empty batch (the project key's alone) tells which.
    this.probing ??= this.probe().then((ok) => {
      this.probing = undefined;
      if (ok === true) this.projectKeyOk = true;
      this.blame(
        ok === true ? 'personal' : ok === false ? 'project' : 'personal-or-project',
        status,
      );
    });
  }

  private blame(which: 'project' | 'personal' | 'personal-or-project', status: number): void {
    const by = `rejected by ${this.host} (HTTP ${status})`;
    const message =
      which === 'project'
        ? `POSTHOG_PROJECT_API_KEY: ${by}; batches PostHog refuses are dropped and flags answer their defaults until the key is fixed`
        : which === 'personal'
          ? `POSTHOG_PERSONAL_API_KEY: ${by} (it needs feature flag read access); local evaluation keeps the definitions it has (or asks /flags) until it answers again`
          : `POSTHOG_PERSONAL_API_KEY or POSTHOG_PROJECT_API_KEY: flag definitions ${by}; the personal key needs feature flag read access to the project of the project key; local evaluation keeps the definitions it has (or asks /flags)`;
    this.reporter.outage('posthog:keys', undefined, message);
  }

  private down(endpoint: Endpoint, why: string): void {
    this.reporter.outage(
      `posthog:${endpoint}`,
      undefined,
      `PostHog ${endpoint} requests to ${this.host} are failing (${why}); ${CONSEQUENCE[endpoint]}`,
    );
  }

  private up(endpoint: Endpoint): void {
    if (this.reporter.recovered(`posthog:${endpoint}`)) {
      this.reporter.warn(`PostHog ${endpoint} requests to ${this.host} work again`);
    }
  }
}

/** Whether PostHog takes the project key: an empty batch, answered 2xx or 401/403; undefined when it cannot tell. */
async function probeProjectKey(
  fetchImpl: typeof fetch,
  host: string,
  apiKey: string,
): Promise<boolean | undefined> {
  try {
    const res = await fetchImpl(`${host}/batch/`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ api_key: apiKey, batch: [], sent_at: new Date().toISOString() }),
      signal: AbortSignal.timeout(5_000),
    });
    await res.body?.cancel().catch(() => {});
    if (res.ok) return true;
    return res.status === 401 || res.status === 403 ? false : undefined;
  } catch {
    return undefined;
  }
}

/** PostHog answered "not now"; thrown so posthog-node keeps the batch queued. */
export class TemporaryFailure extends Error {
  readonly status: number;

  constructor(status: number) {
    super(`PostHog answered HTTP ${status}; the events stay queued for the next flush`);
    this.name = 'TemporaryFailure';
    this.status = status;
  }
}

/**
 * Errors posthog-node emits that the transport has reported already (once per outage):
 * failed requests, and its poller's messages about refused definitions.
 */
export function reportedByTransport(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  return (
    name === 'PostHogFetchHttpError' ||
    name === 'PostHogFetchNetworkError' ||
    name === 'ClientError'
  );
}

function urlOf(input: RequestInfo | URL): string {
  return typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
}
