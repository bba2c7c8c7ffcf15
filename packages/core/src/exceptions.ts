// What every capture path shares: the once-per-error mark, an error's status, the default policy.
export {
  CODE_VARIABLES_REDACTED_VALUE,
  CODE_VARIABLES_TOO_LONG_VALUE,
  DEFAULT_CODE_VARIABLES_MASK_PATTERNS,
  isInAppFile,
} from './frames.ts';

// posthog-node skips errors carrying this property (its Express handler, autocapture),
// so marking with it makes "captured once" hold across the kit and posthog-node alike.
const MARKER = '__posthog_previously_captured_error';
const captured = new WeakSet<object>();

const isObject = (x: unknown): x is object =>
  (typeof x === 'object' && x !== null) || typeof x === 'function';

/** Whether this error object was captured already (by the kit or posthog-node). */
export function wasCaptured(error: unknown): boolean {
  return (
    isObject(error) && (captured.has(error) || (error as Record<string, unknown>)[MARKER] === true)
  );
}

/** Marks an error object as captured; primitives cannot be marked and are captured each time. */
export function markCaptured(error: unknown): void {
  if (!isObject(error)) return;
  captured.add(error);
  try {
    Object.defineProperty(error, MARKER, { value: true, enumerable: false, configurable: true });
  } catch {
    // Frozen objects keep only the WeakSet mark.
  }
}

/**
 * The HTTP status an error carries, from the fields frameworks and libraries use:
 * `status`, `statusCode`, `status_code`, Boom's `output.statusCode`.
 */
export function statusOfError(error: unknown): number | undefined {
  if (!isObject(error)) return undefined;
  const e = error as {
    status?: unknown;
    statusCode?: unknown;
    status_code?: unknown;
    output?: { statusCode?: unknown };
  };
  for (const candidate of [e.status, e.statusCode, e.status_code, e.output?.statusCode]) {
    const n = typeof candidate === 'string' ? Number(candidate) : candidate;
    if (typeof n === 'number' && Number.isInteger(n) && n >= 100 && n <= 599) return n;
  }
  return undefined;
}

/** The default error policy: capture when the status is unknown or a server error. */
export function defaultShouldCaptureError(_error: unknown, status: number | undefined): boolean {
  return status === undefined || status >= 500;
}
