import type { PostHogApi } from '../api.ts';
import type { Scope } from '../context.ts';
import { bindApi, type KitParts, ScopedApi } from '../operations.ts';
import type { Properties } from '../types.ts';

/**
 * A request's PostHog handle (`req.posthog`, `ctx.state.posthog`, `c.var.posthog`,
 * `event.context.posthog`): the API bound to that request, with or without
 * AsyncLocalStorage. A request that `requestFilter` skipped has a handle on which every
 * call is a no-op.
 */
export interface PostHogHandle extends PostHogApi {
  /** The request's distinct id: tracing header, user or cookie, or what `setDistinctId` set. */
  readonly distinctId: string | undefined;
  /** The request's session id. */
  readonly sessionId: string | undefined;
  /** The request's tags (a copy). */
  readonly tags: Properties;
  /** Adds a tag to this request's events. */
  tag(key: string, value: unknown): void;
  /** Sets the distinct id of this request's events (after login, say). */
  setDistinctId(distinctId: string): void;
  /** Sets the session id of this request's events. */
  setSessionId(sessionId: string): void;
}

class Handle extends ScopedApi implements PostHogHandle {
  readonly #scope: Scope | undefined;

  constructor(parts: KitParts | undefined, scope: Scope | undefined) {
    super();
    this.#scope = scope;
    bindApi(this, parts, () => scope);
  }

  static scopeOf(handle: unknown): Scope | undefined {
    return handle instanceof Handle ? handle.#scope : undefined;
  }

  get distinctId(): string | undefined {
    return this.#scope?.distinctId;
  }

  get sessionId(): string | undefined {
    return this.#scope?.sessionId;
  }

  get tags(): Properties {
    return this.#scope?.tags ?? {};
  }

  tag(key: string, value: unknown): void {
    this.#scope?.tag(key, value);
  }

  setDistinctId(distinctId: string): void {
    this.#scope?.update({ distinctId });
  }

  setSessionId(sessionId: string): void {
    this.#scope?.update({ sessionId });
  }
}

/** A handle on a kit's parts and a scope (none: every call a no-op). @internal */
export function createHandle(parts: KitParts | undefined, scope: Scope | undefined): PostHogHandle {
  return new Handle(parts, scope);
}

/** The scope behind a handle this core made, else undefined. @internal */
export function scopeOfHandle(handle: unknown): Scope | undefined {
  return Handle.scopeOf(handle);
}
