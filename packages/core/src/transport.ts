/**
 * The fetch posthog-node and the kit use. It counts failed flag requests, so a flag
 * look-up that came back empty can tell "PostHog failed" from "no such flag".
 */
export class Transport {
  /** Failed `/flags` requests since the kit started (network errors and non-2xx answers). */
  flagFailures = 0;
  readonly fetch: typeof fetch;

  constructor(base: typeof fetch | undefined) {
    const inner = base ?? ((input, init) => globalThis.fetch(input, init));
    this.fetch = async (input, init) => {
      const flags = isFlagsRequest(input);
      try {
        const res = await inner(input, init);
        if (flags && !res.ok) this.flagFailures++;
        return res;
      } catch (error) {
        if (flags) this.flagFailures++;
        throw error;
      }
    };
  }
}

function isFlagsRequest(input: RequestInfo | URL): boolean {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  return url.includes('/flags/?');
}
