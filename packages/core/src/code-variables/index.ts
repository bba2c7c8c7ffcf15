/**
 * `@posthog-kit/core/code-variables`: the Node-only half of code variables. Core imports
 * it by itself, lazily, when `captureExceptionCodeVariables` is on; import it yourself
 * only to tune the process's debugger (`configureCodeVariables`) or read what it did
 * (`codeVariablesStats`). It has no static `node:` import: the inspector is found at run
 * time, so bundling it for another runtime is harmless.
 */
export { addCodeVariables, type CodeVariablesRules } from './attach.ts';
export {
  attachDebugger,
  type CodeVariablesOptions,
  type CodeVariablesStats,
  codeVariablesStats,
  configureCodeVariables,
  type DebuggerHost,
} from './debugger.ts';
export { looksLikeSecret, MAX_BYTES_PER_EXCEPTION, MAX_VALUE_LENGTH } from './encode.ts';
export { MAX_DEPTH, MAX_ITEMS, MAX_STRING_LENGTH, MAX_VARIABLES } from './snapshot.ts';
