/**
 * A Node built-in found at run time, so this entry has no static `node:` import and
 * bundles anywhere; undefined where the runtime has no such module.
 */
export function nodeBuiltin<T>(id: string): T | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  try {
    return proc?.getBuiltinModule?.(id) as T | undefined;
  } catch {
    return undefined;
  }
}
