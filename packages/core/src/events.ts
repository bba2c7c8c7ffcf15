// What protects a batch from one event: every event must serialize, or it is sanitised
// on its own (the others of its batch still arrive), and said once.
import type { BeforeSendFn, EventMessage } from 'posthog-node';
import type { ErrorReporter } from './errors.ts';

const MAX_DEPTH = 20;

/** A copy of `value` that JSON can write: what cannot be read or written is replaced, and named. */
function sanitise(value: unknown, depth: number, seen: Set<object>, cut: string[]): unknown {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'bigint') return value.toString();
    if (typeof value === 'function' || typeof value === 'symbol') return undefined;
    return value;
  }
  if (seen.has(value) || depth > MAX_DEPTH) {
    cut.push(seen.has(value) ? 'a circular reference' : 'nesting too deep');
    return '[posthog-kit: not serialisable]';
  }
  seen.add(value);
  try {
    // A toJSON that throws, a getter that throws, a revoked Proxy: each fails here, alone.
    const own = value as { toJSON?: unknown };
    if (typeof own.toJSON === 'function') {
      return sanitise((own.toJSON as () => unknown).call(value), depth + 1, seen, cut);
    }
    if (Array.isArray(value)) return value.map((v) => sanitise(v, depth + 1, seen, cut));
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      let item: unknown;
      try {
        item = (value as Record<string, unknown>)[key];
      } catch (error) {
        cut.push(`${key}: ${error instanceof Error ? error.message : String(error)}`);
        out[key] = '[posthog-kit: not serialisable]';
        continue;
      }
      out[key] = sanitise(item, depth + 1, seen, cut);
    }
    return out;
  } catch (error) {
    cut.push(error instanceof Error ? error.message : String(error));
    return '[posthog-kit: not serialisable]';
  } finally {
    seen.delete(value);
  }
}

/**
 * Whether JSON surely writes `value` as it is, without writing it: primitives, arrays, and
 * objects whose prototype is Object's (or none), nested at most MAX_DEPTH deep. Anything else
 * (a Date, a class instance, a BigInt, a function, a cycle) answers false and JSON decides.
 * A getter that throws throws here, as it would in JSON. About 5x cheaper than
 * `JSON.stringify` on an event's properties.
 */
function plainJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'undefined':
      return true;
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (depth >= MAX_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!plainJson(value[i], depth + 1)) return false;
    return true;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key in value) {
    if (!plainJson((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}

/**
 * The first before_send: an event whose properties JSON cannot write (posthog-node would
 * fail the whole batch on it) is sent with the bad values replaced, and said once.
 */
export function serialisableEvents(errors: ErrorReporter): BeforeSendFn {
  return (event: EventMessage | null) => {
    if (!event) return event;
    try {
      if (!plainJson(event.properties, 0)) JSON.stringify(event.properties);
      return event;
    } catch {
      const cut: string[] = [];
      const properties = sanitise(
        event.properties,
        0,
        new Set(),
        cut,
      ) as EventMessage['properties'];
      errors.outage(
        'event:unserialisable',
        undefined,
        `event "${event.event}": a property could not be serialised (${cut[0] ?? 'unknown'}); sent with that value replaced, the other events are not affected`,
      );
      return { ...event, properties };
    }
  };
}

/** Counts the events posthog-node drops at `maxQueueSize`; the kit reports them once per outage. */
export class QueueDrops {
  /** Events dropped since the kit started. */
  count = 0;
  #open = 0;
  readonly #errors: ErrorReporter;
  readonly #max: number;

  constructor(errors: ErrorReporter, maxQueueSize: number) {
    this.#errors = errors;
    this.#max = maxQueueSize;
  }

  /** Called with the queue's length before an event is queued. */
  before(length: number): void {
    if (length < this.#max) return;
    this.count++;
    this.#open++;
    this.#errors.outage(
      'queue:full',
      undefined,
      `the event queue is full (maxQueueSize ${this.#max}: PostHog is slow or unreachable, or events come faster than they are sent); the oldest events are dropped, and counted (kit.droppedEvents)`,
    );
  }

  /** After a flush: the queue has room again. */
  drained(length: number): void {
    if (this.#open === 0 || length >= this.#max) return;
    if (this.#errors.recovered('queue:full')) {
      this.#errors.warn(
        `the event queue has room again; ${this.#open} events were dropped while it was full (${this.count} since start)`,
      );
    }
    this.#open = 0;
  }
}
