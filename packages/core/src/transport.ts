/**
 * The fetch posthog-node and the kit use. It counts failed flag requests, so a flag
 * look-up that came back empty can tell "PostHog failed" from "no such flag"; and it
 * turns a batch answered "try later" (408, 429, 5xx) into a network error, because
 * posthog-node drops a batch after an HTTP error but keeps it queued after a network
 * error: PostHog being down then costs no event that fits the queue.
 */
export class Transport {
  /** Failed `/flags` requests since the kit started (network errors and non-2xx answers). */
  flagFailures = 0;
  readonly fetch: typeof fetch;

  constructor(base: typeof fetch | undefined) {
    const inner = base ?? ((input, init) => globalThis.fetch(input, init));
    this.fetch = async (input, init) => {
      const url = urlOf(input);
      const flags = url.includes('/flags/?');
      try {
        const res = await inner(input, init);
        if (flags && !res.ok) this.flagFailures++;
        if (isBatch(url) && isTemporary(res.status)) {
          await res.body?.cancel().catch(() => {});
          throw new TemporaryFailure(res.status);
        }
        return res;
      } catch (error) {
        if (flags) this.flagFailures++;
        throw error;
      }
    };
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

function urlOf(input: RequestInfo | URL): string {
  return typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
}

function isBatch(url: string): boolean {
  return url.includes('/batch/');
}

function isTemporary(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}
