import type { EndpointKind, Fault, FaultEndpoint } from './types.ts';

/** A fault as applied: what to do to one request. */
export interface ActiveFault {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  delayMs: number;
  drop: boolean;
}

interface Entry {
  endpoint: FaultEndpoint;
  fault: ActiveFault;
  remaining: number;
}

const ENDPOINTS: readonly FaultEndpoint[] = ['batch', 'flags', 'definitions', '*'];

const invalid = (message: string): never => {
  throw new Error(`[posthog-kit/testing] fault(): ${message}`);
};

/** Faults in the order added; each request takes the first one that still has uses left. */
export class FaultQueue {
  private entries: Entry[] = [];

  add(endpoint: FaultEndpoint, fault: Fault): void {
    if (!ENDPOINTS.includes(endpoint)) {
      invalid(`endpoint must be one of ${ENDPOINTS.join(', ')}, got ${JSON.stringify(endpoint)}`);
    }
    const f = fault as Partial<Record<'status' | 'delayMs' | 'times', unknown>> & {
      drop?: unknown;
      body?: unknown;
      headers?: Record<string, string>;
    };
    const status = f.status;
    if (status !== undefined && (!Number.isInteger(status) || (status as number) < 100)) {
      invalid(`status must be an HTTP status code, got ${JSON.stringify(status)}`);
    }
    const delayMs = f.delayMs ?? 0;
    if (typeof delayMs !== 'number' || !(delayMs >= 0)) {
      invalid(`delayMs must be a number of milliseconds >= 0, got ${JSON.stringify(f.delayMs)}`);
    }
    const times = f.times ?? Number.POSITIVE_INFINITY;
    if (typeof times !== 'number' || !(times >= 1)) {
      invalid(
        `times must be at least 1 (leave it out for "forever"), got ${JSON.stringify(times)}`,
      );
    }
    const drop = f.drop === true;
    if (status === undefined && !drop && f.delayMs === undefined) {
      invalid('give a status, a delayMs or drop: true');
    }
    this.entries.push({
      endpoint,
      remaining: times as number,
      fault: {
        delayMs: delayMs as number,
        drop,
        ...(status !== undefined && { status: status as number, body: f.body, headers: f.headers }),
      },
    });
  }

  /** The fault for this request, using up one of its times. */
  take(kind: EndpointKind): ActiveFault | undefined {
    if (kind === 'other') return undefined;
    const index = this.entries.findIndex((e) => e.endpoint === kind || e.endpoint === '*');
    const entry = this.entries[index];
    if (!entry) return undefined;
    entry.remaining -= 1;
    if (entry.remaining <= 0) this.entries.splice(index, 1);
    return entry.fault;
  }

  clear(): void {
    this.entries = [];
  }
}
