/** What the kit does with an error: log it, throw it to the caller, or drop it. */
export type ErrorMode = 'log' | 'raise' | 'ignore';

/** Where log lines go. Any console-like object fits. */
export interface KitLogger {
  warn(message: string): void;
  error(message: string): void;
  debug?(message: string): void;
}

const PREFIX = '[posthog-kit]';

/** An error the kit raises: bad settings, failed validation, a failed flush or flag look-up. */
export class PostHogKitError extends Error {
  /** Where it happened: 'settings', 'validation', 'flush', 'shutdown', 'capture', 'flags', 'background', ... */
  readonly where: string;

  constructor(message: string, where: string, options?: { cause?: unknown }) {
    super(message.startsWith(PREFIX) ? message : `${PREFIX} ${message}`, options);
    this.name = 'PostHogKitError';
    this.where = where;
  }
}

// PostHog keys: project (phc_), personal (phx_), project secret (phs_).
const KEY_PATTERN = /\bph[cxs]_[A-Za-z0-9_-]{4,}/g;
const TOKEN_QUERY = /([?&](?:token|api_key)=)[^&\s"']+/gi;
const BEARER = /(Bearer\s+)[^\s"',]+/gi;

/** Removes every secret from a text: the kit's own keys, anything shaped like a PostHog key, bearer tokens. */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join('[redacted]');
  }
  return out
    .replace(KEY_PATTERN, '[redacted]')
    .replace(TOKEN_QUERY, '$1[redacted]')
    .replace(BEARER, '$1[redacted]');
}

/** A one-line description of anything thrown. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? ` (cause: ${error.cause.message})` : '';
    return `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}${cause}`;
  }
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}

const consoleLogger: KitLogger = {
  warn: (message) => console.warn(message),
  error: (message) => console.error(message),
  debug: (message) => console.debug(message),
};

/**
 * Routes every error the kit meets through the error mode, with secrets removed.
 * Foreground errors (the caller awaits something) throw in `raise` mode; background
 * errors have no caller, so `raise` logs them.
 */
export class ErrorReporter {
  mode: ErrorMode;
  logger: KitLogger;
  private readonly secrets: string[];
  private readonly outages = new Set<string>();

  constructor(mode: ErrorMode, logger: KitLogger | undefined, secrets: Array<string | undefined>) {
    this.mode = mode;
    this.logger = logger ?? consoleLogger;
    this.secrets = secrets.filter((s): s is string => typeof s === 'string' && s.length > 0);
  }

  /** Text safe to print or send: secrets removed, prefixed. */
  clean(message: string): string {
    const text = redact(message, this.secrets);
    return text.startsWith(PREFIX) ? text : `${PREFIX} ${text}`;
  }

  /** An error someone awaits: thrown in `raise` mode, logged in `log` mode. */
  foreground(where: string, error: unknown, message?: string): void {
    if (this.mode === 'ignore') return;
    const text = this.clean(message ?? `${where} failed: ${describeError(error)}`);
    if (this.mode === 'raise') {
      throw error instanceof PostHogKitError ? error : new PostHogKitError(text, where);
    }
    this.safeLog('error', text);
  }

  /** An error with no caller to throw to (posthog-node's background work, timers). */
  background(where: string, error: unknown, message?: string): void {
    if (this.mode === 'ignore') return;
    this.safeLog('error', this.clean(message ?? `${where}: ${describeError(error)}`));
  }

  /** A warning that is never thrown. */
  warn(message: string): void {
    if (this.mode === 'ignore') return;
    this.safeLog('warn', this.clean(message));
  }

  /** Debug output, only when the logger has a debug method. */
  debug(message: string): void {
    if (this.logger.debug) this.safeLog('debug', this.clean(message));
  }

  /**
   * Reports the first failure of an outage (keyed by `key`) and stays quiet until
   * `recovered(key)`, so a store that is down does not flood the log.
   */
  outage(key: string, error: unknown, message?: string): void {
    if (this.outages.has(key)) return;
    this.outages.add(key);
    this.background(key, error, message);
  }

  /** Ends an outage; the next failure is reported again. Returns whether one was open. */
  recovered(key: string): boolean {
    return this.outages.delete(key);
  }

  private safeLog(level: 'warn' | 'error' | 'debug', text: string): void {
    try {
      this.logger[level]?.(text);
    } catch {
      // A broken logger must not break the request that logged.
    }
  }
}
