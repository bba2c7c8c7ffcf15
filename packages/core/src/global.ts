import { ContextStore, defaultContextStorage, type Scope } from './context.ts';

/** The process-wide slot: the default kit, and the context store kits share. */
export interface GlobalState {
  /** The default kit (created by `configure()`, a middleware's settings, or the environment). */
  kit: unknown;
  /** The options the default kit was made from, when a middleware made it. */
  middlewareOptions: Record<string, unknown> | undefined;
  store: ContextStore | undefined;
}

// On globalThis so an ESM and a CJS copy of core share it.
const GLOBAL_KEY = Symbol.for('posthog-kit.core.v2');
const holder = globalThis as Record<symbol, GlobalState | undefined>;
const globalState: GlobalState = holder[GLOBAL_KEY] ?? {
  kit: undefined,
  middlewareOptions: undefined,
  store: undefined,
};
holder[GLOBAL_KEY] = globalState;

/** The process-wide slot. @internal */
export function processState(): GlobalState {
  return globalState;
}

/** The context store every kit shares unless given its own storage. */
export function sharedContextStore(): ContextStore {
  globalState.store ??= new ContextStore(defaultContextStorage<Scope>().storage);
  return globalState.store;
}
