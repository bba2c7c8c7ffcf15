/** Where the flag definitions a process evaluates with came from. */
export type FlagDefinitionsSource =
  /** This process leads: it fetched them from PostHog (or PostHog confirmed them) and published them. */
  | 'leader'
  /** Read from the shared store, published by the leader or a relay. */
  | 'shared-store'
  /** Fetched from PostHog by this process for itself (no shared store, or the store failing). */
  | 'own-fetch'
  /** None: flags are evaluated as posthog-node does without definitions (remotely, or undefined). */
  | 'none';

/** What a platform team watches: where the definitions came from, their age, the leader, the last error. */
export interface FlagsStatus {
  /** `poll` (fetch with the personal key, shared through the store when there is one) or `store` (read the store only). */
  mode: 'poll' | 'store';
  /** Where the definitions in use came from. */
  source: FlagDefinitionsSource;
  /** When PostHog last confirmed them (a 200 or a 304 to whoever fetched), ms since the epoch. */
  confirmedAt: number | undefined;
  /** Milliseconds since `confirmedAt`. */
  ageMs: number | undefined;
  /** Flags in the definitions in use. */
  flagCount: number;
  /** Store-only: the shared definitions are missing or older than the max age, so none are used. */
  stale: boolean;
  /** This process, as the lease and other processes' status show it (`<hostname>/<pid>`). */
  identity: string;
  /** Whether this process leads. */
  leader: boolean;
  /** The leader's identity (or the relay's that published what is in use), when known. */
  leaderIdentity: string | undefined;
  /** The store the definitions are shared through; undefined when none is. */
  store: { description: string; failing: boolean } | undefined;
  /** The last thing that went wrong (store, PostHog, stale data), secrets removed. */
  lastError: { message: string; at: number } | undefined;
}

/** Whether a status is one a health check should pass: definitions in use, not stale. */
export function isHealthy(status: FlagsStatus): boolean {
  return status.source !== 'none' && !status.stale;
}

/** Calls `listener` at most once per tick however many changes happen in it. */
export class StatusNotifier {
  private readonly listeners = new Set<() => void>();
  private pending = false;

  add(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  notify(): void {
    if (this.pending || this.listeners.size === 0) return;
    this.pending = true;
    queueMicrotask(() => {
      this.pending = false;
      for (const listener of this.listeners) {
        try {
          listener();
        } catch {
          // A listener that throws must not break the flag load that notified it.
        }
      }
    });
  }
}
