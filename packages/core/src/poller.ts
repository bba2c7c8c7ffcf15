/**
 * Flag definitions polling, the kit's own: posthog-node's poller holds a ref'd timer, so
 * a script that forgot `shutdown()` never ends (and never reaches `beforeExit`, where the
 * kit would flush). The kit turns posthog-node's timer off (`featureFlagsPollingInterval:
 * null`, public API) and reloads through `reloadFeatureFlags()` on an unref'd timer:
 * same interval, and posthog-node's backoff (doubling per failed poll, at most 60 s).
 */
export class DefinitionsPoller {
  readonly #reload: () => Promise<void>;
  readonly #intervalMs: number;
  readonly #failures: () => number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #backoff = 0;
  #stopped = false;

  constructor(reload: () => Promise<void>, intervalMs: number, failures: () => number) {
    this.#reload = reload;
    this.#intervalMs = intervalMs;
    this.#failures = failures;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    const backedOff = Math.min(60_000, this.#intervalMs * 2 ** this.#backoff);
    this.#timer = setTimeout(() => void this.#tick(), Math.max(this.#intervalMs, backedOff));
    (this.#timer as { unref?: () => void }).unref?.();
  }

  async #tick(): Promise<void> {
    const before = this.#failures();
    await this.#reload().catch(() => {});
    this.#backoff = this.#failures() > before ? Math.min(this.#backoff + 1, 10) : 0;
    this.#schedule();
  }

  /** No more polls. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}
