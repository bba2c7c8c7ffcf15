import type { EndpointKind, PostHogEmulator, RecordedEvent, RecordedRequest } from './types.ts';

/** Where the read-only view of what the emulator recorded lives. */
export const INSPECT_PREFIX = '/_emulator';

/** The longest a request may wait for events (`?count=&timeout=`). */
const MAX_WAIT_MS = 60_000;
const DEFAULT_WAIT_MS = 5_000;

/** What the inspection endpoints read: the emulator's public view, and whether it keeps events. */
export interface InspectSource {
  emulator: PostHogEmulator;
  keepEvents: boolean;
}

/** An answer of the inspection endpoints. */
export interface InspectAnswer {
  status: number;
  body: unknown;
}

const ENDPOINTS: Record<string, string> = {
  '/_emulator/events':
    'accepted events; ?event=, ?distinct_id=, ?since=<ms or ISO date>, ?count=<n>&timeout=<ms> waits',
  '/_emulator/requests':
    'every request; ?endpoint=batch|flags|definitions|other, ?method=, ?path=, ?since=',
  '/_emulator/stats': 'counts of events, batches, /flags requests and definitions fetches',
  '/_emulator/flags': 'the flag definitions served, with their ETag',
};

const KINDS: readonly EndpointKind[] = ['batch', 'flags', 'definitions', 'other'];

// Field names that carry a key in PostHog's protocol, and anything shaped like a PostHog key.
const SECRET_FIELDS = new Set(['api_key', 'token', 'personal_api_key', 'secret_key']);
const KEY_SHAPE = /\bph[cxs]_[A-Za-z0-9_-]{4,}/g;

/** `phc_test_emulator` becomes `phc_***`: the type prefix tells keys apart, the rest is hidden. */
const maskKey = (key: string): string => `${key.slice(0, 4)}***`;

/** A deep copy of JSON data with every key masked: by field name, by value, and by shape. */
export function maskSecrets(value: unknown, secrets: readonly string[]): unknown {
  if (typeof value === 'string') {
    let out = value;
    for (const secret of secrets) {
      if (secret.length >= 4 && out.includes(secret)) out = out.split(secret).join(maskKey(secret));
    }
    return out.replace(KEY_SHAPE, (key) => maskKey(key));
  }
  if (Array.isArray(value)) return value.map((item) => maskSecrets(item, secrets));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [name, item] of Object.entries(value)) {
      out[name] =
        SECRET_FIELDS.has(name) && typeof item === 'string' && item !== ''
          ? maskKey(item)
          : maskSecrets(item, secrets);
    }
    return out;
  }
  return value;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** `since`: milliseconds since the epoch, or a date `Date.parse` reads. */
function readSince(query: URLSearchParams): Parsed<number | undefined> {
  const raw = query.get('since');
  if (raw === null || raw === '') return { ok: true, value: undefined };
  const value = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : Date.parse(raw);
  return Number.isFinite(value)
    ? { ok: true, value }
    : {
        ok: false,
        error: `since: expected milliseconds since the epoch or an ISO date, got "${raw}"`,
      };
}

function readWait(
  query: URLSearchParams,
): Parsed<{ count: number; timeoutMs: number } | undefined> {
  const count = query.get('count');
  const timeout = query.get('timeout');
  if (count === null) {
    return timeout === null
      ? { ok: true, value: undefined }
      : { ok: false, error: 'timeout: only with count (how many events to wait for)' };
  }
  const n = Number(count);
  if (!Number.isInteger(n) || n < 1) {
    return { ok: false, error: `count: expected a whole number >= 1, got "${count}"` };
  }
  const ms = timeout === null ? DEFAULT_WAIT_MS : Number(timeout);
  if (!Number.isInteger(ms) || ms < 0 || ms > MAX_WAIT_MS) {
    return { ok: false, error: `timeout: expected 0 to ${MAX_WAIT_MS} ms, got "${timeout}"` };
  }
  return { ok: true, value: { count: n, timeoutMs: ms } };
}

const bad = (error: string): InspectAnswer => ({ status: 400, body: { error } });

async function answerEvents(source: InspectSource, query: URLSearchParams): Promise<InspectAnswer> {
  const since = readSince(query);
  if (!since.ok) return bad(since.error);
  const wait = readWait(query);
  if (!wait.ok) return bad(wait.error);
  const names = query.getAll('event');
  const distinctId = query.get('distinct_id');
  const matches = (e: RecordedEvent) =>
    (names.length === 0 || names.includes(e.event)) &&
    (distinctId === null || e.distinctId === distinctId) &&
    (since.value === undefined || e.receivedAt >= since.value);
  const { emulator } = source;
  const secrets = [emulator.projectApiKey, emulator.personalApiKey];
  const masked = (events: readonly RecordedEvent[]) => ({
    events: events.map((e) => maskSecrets(e, secrets)),
  });

  if (wait.value === undefined)
    return { status: 200, body: masked(emulator.events.filter(matches)) };
  if (!source.keepEvents) {
    return bad('count: this emulator only counts events (keepEvents: false, --count-only)');
  }
  try {
    const found = await emulator.waitForEvents(
      { count: wait.value.count, predicate: matches },
      wait.value.timeoutMs,
    );
    return { status: 200, body: masked(found) };
  } catch (error) {
    // 408 so that a plain status check (curl --fail, raise_for_status) fails the test.
    return {
      status: 408,
      body: { error: (error as Error).message, ...masked(emulator.events.filter(matches)) },
    };
  }
}

function answerRequests(source: InspectSource, query: URLSearchParams): InspectAnswer {
  const since = readSince(query);
  if (!since.ok) return bad(since.error);
  const endpoint = query.get('endpoint');
  if (endpoint !== null && !KINDS.includes(endpoint as EndpointKind)) {
    return bad(`endpoint: expected one of ${KINDS.join(', ')}, got "${endpoint}"`);
  }
  const method = query.get('method')?.toUpperCase();
  const path = query.get('path')?.replace(/\/+$/, '');
  const matches = (r: RecordedRequest) =>
    (endpoint === null || r.endpoint === endpoint) &&
    (method === undefined || r.method === method) &&
    (path === undefined || r.path.replace(/\/+$/, '') === path) &&
    (since.value === undefined || r.timestamp >= since.value);
  const { emulator } = source;
  const secrets = [emulator.projectApiKey, emulator.personalApiKey];
  return {
    status: 200,
    body: { requests: emulator.requests.filter(matches).map((r) => maskSecrets(r, secrets)) },
  };
}

function answerStats({ emulator, keepEvents }: InspectSource): InspectAnswer {
  return {
    status: 200,
    body: {
      eventCount: emulator.eventCount,
      keepEvents,
      batchRequestCount: emulator.batchRequestCount,
      flagsRequestCount: emulator.flagsRequestCount,
      definitionsFetchCount: emulator.definitionsFetchCount,
      definitionsServedCount: emulator.definitionsServedCount,
      definitionsNotModifiedCount: emulator.definitionsNotModifiedCount,
      requestCount: emulator.requests.length,
    },
  };
}

/**
 * The read-only HTTP view of what the emulator recorded, for tests in another process or
 * language. Never recorded, logged or faulted itself; keys are masked everywhere.
 */
export function inspect(
  source: InspectSource,
  method: string,
  url: URL,
): InspectAnswer | Promise<InspectAnswer> {
  if (method !== 'GET' && method !== 'HEAD') {
    return { status: 405, body: { error: `${INSPECT_PREFIX} is read-only: use GET` } };
  }
  const path = url.pathname.replace(/\/+$/, '');
  switch (path) {
    case INSPECT_PREFIX:
      return { status: 200, body: { endpoints: ENDPOINTS } };
    case `${INSPECT_PREFIX}/events`:
      return answerEvents(source, url.searchParams);
    case `${INSPECT_PREFIX}/requests`:
      return answerRequests(source, url.searchParams);
    case `${INSPECT_PREFIX}/stats`:
      return answerStats(source);
    case `${INSPECT_PREFIX}/flags`:
      return {
        status: 200,
        body: { flags: source.emulator.flags, etag: source.emulator.etag },
      };
    default:
      return {
        status: 404,
        body: { error: `no such endpoint: ${url.pathname}`, endpoints: ENDPOINTS },
      };
  }
}
