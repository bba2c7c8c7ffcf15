// Puts the variables taken at a throw onto the frames of the `$exception` event that
// reports that error, when it is captured.
import { snapshotOf } from './debugger.ts';
import { compileRules, encodeVariables, MAX_BYTES_PER_EXCEPTION, type Rules } from './encode.ts';
import { nodeBuiltin } from './node.ts';
import type { SnapFrame, Snapshot } from './snapshot.ts';

/** What decides masking and dropping for one capture. */
export interface CodeVariablesRules {
  /** Mask patterns, the defaults included when they are used. */
  maskPatterns: readonly string[];
  ignorePatterns: readonly string[];
  /** The directory posthog-node made frame filenames relative to. */
  cwd: string | undefined;
  /**
   * Told once per problem when a pattern cannot be used (the exception's variables are
   * then all masked, or all dropped for an ignore pattern, never sent in clear).
   */
  report?: ((message: string) => void) | undefined;
}

interface EventFrame {
  filename?: string;
  function?: string;
  lineno?: number;
  in_app?: boolean;
  code_variables?: Record<string, string | number>;
}
interface EventException {
  mechanism?: { parent_id?: number; source?: string };
  stacktrace?: { frames?: EventFrame[] };
}

const path = nodeBuiltin<typeof import('node:path')>('node:path');
const url = nodeBuiltin<typeof import('node:url')>('node:url');

function readProperty(target: unknown, key: string): unknown {
  if ((typeof target !== 'object' && typeof target !== 'function') || target === null) {
    return undefined;
  }
  try {
    return (target as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

/**
 * The error object behind each entry of `$exception_list`: the captured error first,
 * then its causes and AggregateError members, found through `mechanism.parent_id`.
 */
function errorObjects(list: EventException[], error: unknown): unknown[] {
  const objects: unknown[] = [error];
  const membersSeen = new Map<number, number>();
  for (let i = 1; i < list.length; i++) {
    const mechanism = list[i]?.mechanism;
    const parentId = mechanism?.parent_id;
    const parent = typeof parentId === 'number' ? objects[parentId] : undefined;
    if (mechanism?.source === 'cause') {
      objects.push(readProperty(parent, 'cause'));
    } else if (mechanism?.source === 'member' && typeof parentId === 'number') {
      const n = membersSeen.get(parentId) ?? 0;
      membersSeen.set(parentId, n + 1);
      const members = readProperty(parent, 'errors');
      objects.push(Array.isArray(members) ? members[n] : undefined);
    } else {
      objects.push(undefined);
    }
  }
  return objects;
}

function filePath(scriptUrl: string): string {
  if (scriptUrl.startsWith('file:') && url) {
    try {
      return url.fileURLToPath(scriptUrl);
    } catch {
      return scriptUrl;
    }
  }
  return scriptUrl;
}

function sameFile(eventFile: string | undefined, file: string, cwd: string | undefined): boolean {
  if (!eventFile) return false;
  if (eventFile === file) return true;
  if (path && cwd !== undefined && path.resolve(cwd, eventFile) === path.resolve(file)) return true;
  const tail = eventFile.replace(/\\/g, '/').replace(/^(?:\.\.?\/)+/, '');
  return tail !== '' && file.replace(/\\/g, '/').endsWith(`/${tail}`);
}

const anonymous = (name: string | undefined) =>
  name === undefined || name === '' || name === '?' || name === '<anonymous>';

function sameFunction(eventName: string | undefined, name: string): boolean {
  if (anonymous(eventName) || anonymous(name)) return anonymous(eventName) && anonymous(name);
  const e = eventName as string;
  return e === name || e.endsWith(`.${name}`) || name.endsWith(`.${e}`);
}

/**
 * Pairs the debugger's frames with the event's (stack order: innermost last). The event's
 * frames come from `error.stack`, taken where the error was created, the debugger's where
 * it was thrown: callers sit at the same lines, the top frame may not, so a frame matches
 * on its file and either its line or its function name, walking outwards in order.
 */
function matchFrames(
  frames: EventFrame[],
  snapshot: Snapshot,
  cwd: string | undefined,
): Array<[EventFrame, SnapFrame]> {
  const pairs: Array<[EventFrame, SnapFrame]> = [];
  let next = frames.length - 1;
  for (const taken of snapshot.frames) {
    const file = filePath(taken.url);
    for (let j = next; j >= 0; j--) {
      const frame = frames[j] as EventFrame;
      if (!sameFile(frame.filename, file, cwd)) continue;
      if (frame.lineno !== taken.line && !sameFunction(frame.function, taken.fn)) continue;
      if (frame.in_app) pairs.push([frame, taken]);
      next = j - 1;
      break;
    }
  }
  return pairs;
}

/**
 * Sets `code_variables` on the in-app frames of every exception of the event whose error
 * object was snapshotted when thrown; one 10 KiB budget for the whole event.
 */
export function addCodeVariables(
  list: unknown[],
  error: unknown,
  options: CodeVariablesRules,
): void {
  const exceptions = list as EventException[];
  const objects = errorObjects(exceptions, error);
  const budget = { left: MAX_BYTES_PER_EXCEPTION };
  let rules: Rules | undefined;
  for (let i = 0; i < exceptions.length; i++) {
    const object = objects[i];
    const snapshot = typeof object === 'object' && object !== null ? snapshotOf(object) : undefined;
    const frames = exceptions[i]?.stacktrace?.frames;
    if (!snapshot || !Array.isArray(frames)) continue;
    rules ??= compileRules(options.maskPatterns, options.ignorePatterns, options.report);
    for (const [frame, taken] of matchFrames(frames, snapshot, options.cwd)) {
      const variables = encodeVariables(taken.vars, rules, budget);
      if (variables) frame.code_variables = variables;
    }
  }
}
