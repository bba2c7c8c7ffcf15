// The load generator: autocannon in this (the parent) process, apart from the app.
import autocannon from 'autocannon';

export interface LoadResult {
  requestsPerSecond: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  total: number;
}

export interface LoadOptions {
  url: string;
  durationSeconds?: number;
  amount?: number;
  connections?: number;
  /** Distinct ids rotated over requests, sent as X-POSTHOG-DISTINCT-ID. */
  users?: number;
}

export async function load(options: LoadOptions): Promise<LoadResult> {
  let n = 0;
  const users = options.users ?? 1000;
  const result = await autocannon({
    url: options.url,
    connections: options.connections ?? 50,
    ...(options.amount ? { amount: options.amount } : { duration: options.durationSeconds ?? 10 }),
    requests: [
      {
        setupRequest: (req) => {
          n = (n + 1) % users;
          return {
            ...req,
            headers: {
              'x-posthog-distinct-id': `bench-user-${n}`,
              'x-posthog-session-id': `bench-session-${n}`,
              'user-agent': 'posthog-kit-bench',
            },
          };
        },
      },
    ],
  });
  return {
    requestsPerSecond: result.requests.average,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    total: result.requests.total,
  };
}
