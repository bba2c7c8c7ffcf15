import type { PostHogApi } from './api.ts';
import type { RequestFlags } from './flags/snapshot.ts';
import type { ContextStorage, Groups, Properties } from './types.ts';

/** What a context carries. Nested contexts inherit every field they do not set. */
export interface ContextData {
  /** The distinct id events and flag look-ups use. */
  distinctId?: string | undefined;
  /** Sent as `$session_id`. */
  sessionId?: string | undefined;
  /** Sent as `$device_id`; flags use it for device bucketing. */
  deviceId?: string | undefined;
  /** Properties added to every event; inner tags win. */
  tags?: Properties | undefined;
  /** Groups added to every event and flag look-up. */
  groups?: Groups | undefined;
  /** Overrides the code-variables setting inside this context. */
  captureExceptionCodeVariables?: boolean | undefined;
  /** Overrides the mask patterns inside this context (added to the built-in list). */
  codeVariablesMaskPatterns?: string[] | undefined;
  /** Overrides the ignore patterns inside this context. */
  codeVariablesIgnorePatterns?: string[] | undefined;
}

/** Options of `withContext`. */
export interface WithContextOptions {
  /**
   * Start from nothing instead of inheriting the enclosing context.
   * @default false
   */
  fresh?: boolean | undefined;
}

/** One context: its own values, the request it came from, the context around it. */
export class Scope {
  readonly #parent: Scope | undefined;
  readonly #own: ContextData;

  constructor(parent: Scope | undefined, own: ContextData) {
    this.#parent = parent;
    this.#own = own;
  }

  /** Sets fields of this context (not of the ones around it). */
  update(data: ContextData): void {
    Object.assign(this.#own, data);
  }

  /**
   * What the module-level sugar acts on inside this context: the kit of the request's
   * middleware (a no-op handle for a request its `requestFilter` skipped), if any.
   */
  get api(): PostHogApi | undefined {
    return this.#parent?.api;
  }

  /** The flags read in the request this context is in (its own contexts included), if any. */
  get flagReads(): RequestFlags | undefined {
    return this.#parent?.flagReads;
  }

  /** The distinct id: set here, else derived (a request's), else inherited. */
  get distinctId(): string | undefined {
    return this.#own.distinctId ?? this.derivedDistinctId() ?? this.#parent?.distinctId;
  }

  /** An anonymous request's one personless id (its events tie together, no person made). */
  get personlessId(): string | undefined {
    return this.#parent?.personlessId;
  }

  /** The session id: set here, else derived (a request's), else inherited. */
  get sessionId(): string | undefined {
    return this.#own.sessionId ?? this.derivedSessionId() ?? this.#parent?.sessionId;
  }

  get deviceId(): string | undefined {
    return this.#own.deviceId ?? this.#parent?.deviceId;
  }

  get groups(): Groups | undefined {
    const outer = this.#parent?.groups;
    const own = this.#own.groups;
    return outer && own ? { ...outer, ...own } : (own ?? outer);
  }

  /** Every tag visible here: outer contexts, then the request's, then this context's own. */
  get tags(): Properties {
    const outer = this.#parent?.tags;
    const request = this.derivedTags();
    const own = this.#own.tags;
    if (!request && !own) return outer ?? {};
    // A request's own scope, the common case: one spread, V8's fast copy of one shape.
    if (!outer && !own) return { ...request };
    return { ...outer, ...request, ...own };
  }

  get captureExceptionCodeVariables(): boolean | undefined {
    return this.#own.captureExceptionCodeVariables ?? this.#parent?.captureExceptionCodeVariables;
  }

  get codeVariablesMaskPatterns(): string[] | undefined {
    return this.#own.codeVariablesMaskPatterns ?? this.#parent?.codeVariablesMaskPatterns;
  }

  get codeVariablesIgnorePatterns(): string[] | undefined {
    return this.#own.codeVariablesIgnorePatterns ?? this.#parent?.codeVariablesIgnorePatterns;
  }

  /** Adds one tag to this context. */
  tag(key: string, value: unknown): void {
    this.#own.tags = { ...this.#own.tags, [key]: value };
  }

  /** Values a kind of scope derives lazily (a request: headers, user, tags). */
  protected derivedDistinctId(): string | undefined {
    return undefined;
  }

  protected derivedSessionId(): string | undefined {
    return undefined;
  }

  protected derivedTags(): Properties | undefined {
    return undefined;
  }
}

type AsyncLocalStorageClass = new <T>() => {
  run<R>(store: T, fn: () => R): R;
  getStore(): T | undefined;
};

/** AsyncLocalStorage where the runtime has it, found at run time so core has no `node:` import. */
function findAsyncLocalStorage(): AsyncLocalStorageClass | undefined {
  const g = globalThis as {
    AsyncLocalStorage?: AsyncLocalStorageClass;
    process?: { getBuiltinModule?: (id: string) => { AsyncLocalStorage?: AsyncLocalStorageClass } };
  };
  if (typeof g.AsyncLocalStorage === 'function') return g.AsyncLocalStorage;
  try {
    return g.process?.getBuiltinModule?.('node:async_hooks')?.AsyncLocalStorage;
  } catch {
    return undefined;
  }
}

/**
 * Without AsyncLocalStorage: the scope is visible while `fn` runs synchronously, never
 * after an await, so it can be missing but never belongs to another request.
 */
function synchronousStorage<T>(): ContextStorage<T> {
  let current: T | undefined;
  return {
    run(store, fn) {
      const previous = current;
      current = store;
      try {
        return fn();
      } finally {
        current = previous;
      }
    },
    get: () => current,
  };
}

/** The default storage: AsyncLocalStorage when found, else synchronous-only. */
export function defaultContextStorage<T>(): { storage: ContextStorage<T>; async: boolean } {
  const ALS = findAsyncLocalStorage();
  if (!ALS) return { storage: synchronousStorage<T>(), async: false };
  const als = new ALS<T>();
  return {
    storage: { run: (store, fn) => als.run(store, fn), get: () => als.getStore() },
    async: true,
  };
}

/** Contexts on one storage. */
export class ContextStore {
  readonly storage: ContextStorage<Scope>;

  constructor(storage: ContextStorage<Scope>) {
    this.storage = storage;
  }

  /** The innermost scope, if any. */
  current(): Scope | undefined {
    return this.storage.get();
  }

  /** Runs `fn` inside `scope`. */
  run<R>(scope: Scope, fn: () => R): R {
    return this.storage.run(scope, fn);
  }

  /** Runs `fn` in a new context that inherits the current one unless `fresh`. */
  withContext<R>(data: ContextData, fn: () => R, options?: WithContextOptions): R {
    const parent = options?.fresh ? undefined : this.current();
    return this.storage.run(
      new Scope(parent, { ...data, tags: data.tags && { ...data.tags } }),
      fn,
    );
  }
}
