// A bounded copy of local variables, taken while the debugger holds the app paused at a
// throw. It reads values only through property descriptors and built-in intrinsics, so
// no getter, Proxy trap or toString of the app runs, and nothing is masked yet: masking
// happens when the error is captured, with the rules of the capturing context.
import type { types as UtilTypes } from 'node:util';

// Error.isError (Node 24+; util.types.isNativeError is deprecated); proxies are handled before this, so instanceof runs no trap.
const isError: (x: unknown) => boolean =
  (Error as { isError?: (x: unknown) => boolean }).isError ?? ((x) => x instanceof Error);

/** A string over this many characters is never scanned nor sent (posthog-python's figure). */
export const MAX_STRING_LENGTH = 2_048;
/** Nesting kept below a variable: its value, then three levels of children. */
export const MAX_DEPTH = 3;
/** Items kept per array, object, Map or Set. */
export const MAX_ITEMS = 20;
/** Variables kept per frame. */
export const MAX_VARIABLES = 50;
// Work bounds, sized to what can be sent (1024 characters a variable, 10 KiB an
// exception): values visited per variable and per exception, characters copied.
const MAX_NODES_PER_VARIABLE = 100;
const MAX_NODES = 800;
const MAX_CHARS = 32 * 1024;
/**
 * Keys read per pause (listing an object's keys costs time in proportion to all of
 * them, however few are kept): past it, objects not yet listed are cut.
 */
export const MAX_KEYS_PER_PAUSE = 20_000;
/**
 * An object with this many keys or more is listed once, then shown by its size for a
 * minute without listing again: 1M keys take ~250 ms to list, each time.
 */
export const LARGE_OBJECT_KEYS = 5_000;
const LARGE_OBJECT_RELIST_MS = 60_000;

/** The name under which a frame says what was left out of it (never a JS identifier). */
export const CUT_NAME = '...';
/** Why something was cut. */
export type CutReason = 'time' | 'keys';
const CUT_TEXT: Record<CutReason, string> = {
  time: 'pause time limit',
  keys: 'keys read limit',
};

/** What a snapshot needs from its pause: when to stop, and the large objects seen before. */
export interface PauseBounds {
  /** `performance.now()` past which nothing more is read. */
  deadline: number;
  /** The per-pause limit, for the marker. */
  maxPauseMs: number;
  /** Objects found large in earlier pauses: their key count and when it was taken. */
  large: WeakMap<object, { keys: number; at: number }>;
}

/** A string too long to keep. */
export interface TooLong {
  t: 'long';
}
/** Something shown as text: a function, a date, an error, a cut-off subtree... */
export interface Leaf {
  t: 'leaf';
  s: string;
}
/** An object, a Map, or a Set/array-like with its class name. */
export interface ObjectNode {
  t: 'obj';
  c: string | undefined;
  e: Array<[string, SnapValue]>;
  /** Entries left out. */
  m: number;
}
export interface ArrayNode {
  t: 'arr';
  i: SnapValue[];
  m: number;
}
export type SnapValue =
  | string
  | number
  | boolean
  | null
  | undefined
  | TooLong
  | Leaf
  | ObjectNode
  | ArrayNode;

export const TOO_LONG: TooLong = Object.freeze({ t: 'long' });

/** One frame's variables, innermost scope first. */
export interface SnapFrame {
  /** The script's URL as the debugger knows it (`file://...` for ESM, a path for CJS). */
  url: string;
  /** The function name the debugger reports ('' when anonymous). */
  fn: string;
  /** 1-based, where the frame was when the exception was thrown. */
  line: number;
  column: number;
  vars: Array<[string, SnapValue]>;
}

/** Everything taken at one throw, innermost frame first. */
export interface Snapshot {
  frames: SnapFrame[];
}

const leaf = (s: string): Leaf => ({ t: 'leaf', s });

// Intrinsics, taken once, so that an app's own overrides are never what runs.
const describe = Object.getOwnPropertyDescriptor;
const getPrototypeOf = Object.getPrototypeOf;
const hasOwn = Object.hasOwn;
const getter = (proto: object, key: string) =>
  describe(proto, key)?.get as ((this: unknown) => unknown) | undefined;
const mapSize = getter(Map.prototype, 'size');
const setSize = getter(Set.prototype, 'size');
const mapEntries = Map.prototype.entries;
const setValues = Set.prototype.values;
const typedArrayLength = getter(getPrototypeOf(Uint8Array.prototype) as object, 'length');
const arrayBufferLength = getter(ArrayBuffer.prototype, 'byteLength');
const regexpSource = getter(RegExp.prototype, 'source');
const dateToIso = Date.prototype.toISOString;
const symbolToString = Symbol.prototype.toString;
const stringValueOf = String.prototype.valueOf;
const numberValueOf = Number.prototype.valueOf;
const booleanValueOf = Boolean.prototype.valueOf;

/** A data property's value; undefined when it is a getter, absent, or reading throws. */
function dataValue(target: object, key: PropertyKey): { value: unknown } | undefined {
  try {
    const d = describe(target, key);
    return d && 'value' in d ? { value: d.value } : undefined;
  } catch {
    return undefined;
  }
}

function accessorText(target: object, key: PropertyKey): string | undefined {
  try {
    const d = describe(target, key);
    if (!d || 'value' in d) return undefined;
    return d.get && d.set ? '[Getter/Setter]' : d.get ? '[Getter]' : '[Setter]';
  } catch {
    return '[Unreadable]';
  }
}

const now = () => performance.now();

export class Snapshotter {
  private readonly types: typeof UtilTypes;
  private readonly bounds: PauseBounds;
  private nodes = 0;
  private variableNodes = 0;
  private chars = 0;
  private keysRead = 0;
  private readonly ancestors = new Set<object>();
  /** The first bound that cut something in this pause, if any. */
  cut: CutReason | undefined;

  constructor(types: typeof UtilTypes, bounds: PauseBounds) {
    this.types = types;
    this.bounds = bounds;
  }

  /** Whether the pause's time is up (then `cut` says so). */
  timeUp(): boolean {
    if (now() <= this.bounds.deadline) return false;
    this.cut ??= 'time';
    return true;
  }

  /** What a frame whose variables were not read carries instead. */
  notRead(reason: CutReason, count?: number): [string, SnapValue] {
    const what = count === undefined ? 'variables not read' : `${count} variables not read`;
    const limit = reason === 'time' ? ` of ${this.bounds.maxPauseMs} ms` : '';
    return [CUT_NAME, `${what} (${CUT_TEXT[reason]}${limit})`];
  }

  /** The variables of one frame's scopes (innermost first; an inner name hides an outer one). */
  frameVariables(scopes: readonly unknown[]): Array<[string, SnapValue]> {
    const out: Array<[string, SnapValue]> = [];
    const seen = new Set<string>();
    if (this.timeUp()) return [this.notRead('time')];
    for (const scope of scopes) {
      if (typeof scope !== 'object' || scope === null) continue;
      let names: string[];
      try {
        names = Object.keys(scope);
      } catch {
        continue;
      }
      for (let i = 0; i < names.length; i++) {
        const name = names[i] as string;
        // V8's internal slots (".result", ".generator_object") are not the app's variables.
        if (name.startsWith('.') || seen.has(name)) continue;
        if (this.timeUp()) {
          out.push(this.notRead('time', names.length - i));
          return out;
        }
        seen.add(name);
        const read = dataValue(scope, name);
        this.variableNodes = 0;
        out.push([name, read ? this.value(read.value, 0) : leaf('[Unreadable]')]);
        if (out.length >= MAX_VARIABLES) return out;
      }
    }
    return out;
  }

  private cutLeaf(reason: CutReason): Leaf {
    this.cut ??= reason;
    return leaf(`[cut: ${CUT_TEXT[reason]}]`);
  }

  value(v: unknown, depth: number): SnapValue {
    switch (typeof v) {
      case 'string':
        if (v.length > MAX_STRING_LENGTH) return TOO_LONG;
        this.chars += v.length;
        return this.chars > MAX_CHARS ? TOO_LONG : v;
      case 'number':
      case 'boolean':
      case 'undefined':
        return v;
      case 'bigint':
        return leaf(`${v}n`);
      case 'symbol':
        return leaf(symbolToString.call(v));
      case 'function':
        return this.types.isProxy(v) ? leaf('[Proxy]') : leaf(functionText(v));
    }
    if (v === null) return null;
    const object = v as object;
    const t = this.types;
    if (t.isProxy(object)) return leaf('[Proxy]');
    if (++this.nodes > MAX_NODES || ++this.variableNodes > MAX_NODES_PER_VARIABLE) {
      return leaf('[...]');
    }
    if (this.timeUp()) return this.cutLeaf('time');
    if (this.ancestors.has(object)) return leaf('[Circular]');
    const special = this.special(object);
    if (special !== undefined) return special;
    const isArray = Array.isArray(object);
    if (depth >= MAX_DEPTH) {
      return leaf(
        isArray ? `[Array(${arrayLength(object)})]` : `[${this.className(object) ?? 'Object'}]`,
      );
    }
    this.ancestors.add(object);
    try {
      if (isArray) return this.array(object as unknown[], depth);
      if (t.isMap(object)) return this.map(object as Map<unknown, unknown>, depth);
      if (t.isSet(object)) return this.set(object as Set<unknown>, depth);
      return this.object(object, depth);
    } finally {
      this.ancestors.delete(object);
    }
  }

  /** Values shown as one line of text. */
  private special(o: object): SnapValue | undefined {
    const t = this.types;
    try {
      if (t.isDate(o)) {
        try {
          return leaf(dateToIso.call(o));
        } catch {
          return leaf('Invalid Date');
        }
      }
      if (t.isRegExp(o)) return leaf(`/${String(regexpSource?.call(o))}/`);
      if (isError(o)) return leaf(this.errorText(o));
      if (t.isPromise(o)) return leaf('[Promise]');
      if (t.isWeakMap(o)) return leaf('[WeakMap]');
      if (t.isWeakSet(o)) return leaf('[WeakSet]');
      if (t.isTypedArray(o)) {
        return leaf(`[${this.className(o) ?? 'TypedArray'}(${String(typedArrayLength?.call(o))})]`);
      }
      if (t.isAnyArrayBuffer(o))
        return leaf(`[ArrayBuffer(${String(arrayBufferLength?.call(o))})]`);
      if (t.isStringObject(o)) return this.value(stringValueOf.call(o), 0);
      if (t.isNumberObject(o)) return numberValueOf.call(o);
      if (t.isBooleanObject(o)) return booleanValueOf.call(o);
      if (t.isBoxedPrimitive(o)) return leaf('[Boxed]');
    } catch {
      return leaf('[Unreadable]');
    }
    return undefined;
  }

  private errorText(o: object): string {
    let name: unknown;
    let proto: object | null = o;
    for (let i = 0; i < 5 && proto && name === undefined; i++) {
      if (this.types.isProxy(proto)) break;
      name = dataValue(proto, 'name')?.value;
      proto = getPrototypeOf(proto) as object | null;
    }
    const message = dataValue(o, 'message')?.value;
    const text = `${typeof name === 'string' ? name : 'Error'}: ${typeof message === 'string' ? message : ''}`;
    return text.length > MAX_STRING_LENGTH ? text.slice(0, MAX_STRING_LENGTH) : text;
  }

  className(o: object): string | undefined {
    try {
      const proto = getPrototypeOf(o) as object | null;
      if (proto === null) return undefined;
      if (this.types.isProxy(proto)) return undefined;
      const ctor = dataValue(proto, 'constructor')?.value;
      if (typeof ctor !== 'function' || this.types.isProxy(ctor)) return undefined;
      const name = dataValue(ctor, 'name')?.value;
      return typeof name === 'string' && name !== '' ? name : undefined;
    } catch {
      return undefined;
    }
  }

  private array(a: unknown[], depth: number): ArrayNode {
    const length = arrayLength(a);
    const kept = Math.min(length, MAX_ITEMS);
    const items: SnapValue[] = [];
    for (let i = 0; i < kept; i++) {
      const read = dataValue(a, i);
      items.push(read ? this.value(read.value, depth + 1) : leaf(accessorText(a, i) ?? '[Empty]'));
    }
    return { t: 'arr', i: items, m: length - kept };
  }

  private map(m: Map<unknown, unknown>, depth: number): ObjectNode {
    const size = Number(mapSize?.call(m) ?? 0);
    const entries: Array<[string, SnapValue]> = [];
    const it = mapEntries.call(m);
    for (let i = 0; i < MAX_ITEMS; i++) {
      const step = it.next();
      if (step.done) break;
      const [key, value] = step.value;
      entries.push([this.keyText(key), this.value(value, depth + 1)]);
    }
    return { t: 'obj', c: this.className(m) ?? 'Map', e: entries, m: size - entries.length };
  }

  private set(s: Set<unknown>, depth: number): ObjectNode {
    const size = Number(setSize?.call(s) ?? 0);
    const entries: Array<[string, SnapValue]> = [];
    const it = setValues.call(s);
    for (let i = 0; i < MAX_ITEMS; i++) {
      const step = it.next();
      if (step.done) break;
      entries.push([String(i), this.value(step.value, depth + 1)]);
    }
    return { t: 'obj', c: this.className(s) ?? 'Set', e: entries, m: size - entries.length };
  }

  private object(o: object, depth: number): ObjectNode | Leaf {
    const known = this.bounds.large.get(o);
    if (known && now() - known.at < LARGE_OBJECT_RELIST_MS) {
      return leaf(`[${this.className(o) ?? 'Object'} with ${known.keys} keys: not read]`);
    }
    if (this.keysRead >= MAX_KEYS_PER_PAUSE) return this.cutLeaf('keys');
    let keys: string[];
    try {
      keys = Object.keys(o);
    } catch {
      return { t: 'obj', c: this.className(o), e: [], m: 0 };
    }
    this.keysRead += keys.length;
    if (keys.length >= LARGE_OBJECT_KEYS) {
      this.bounds.large.set(o, { keys: keys.length, at: now() });
    }
    const kept = Math.min(keys.length, MAX_ITEMS);
    const entries: Array<[string, SnapValue]> = [];
    for (let i = 0; i < kept; i++) {
      const key = keys[i] as string;
      const read = dataValue(o, key);
      entries.push([
        key,
        read ? this.value(read.value, depth + 1) : leaf(accessorText(o, key) ?? '[Unreadable]'),
      ]);
    }
    const c = this.className(o);
    return { t: 'obj', c: c === 'Object' ? undefined : c, e: entries, m: keys.length - kept };
  }

  private keyText(key: unknown): string {
    if (typeof key === 'string') return key.length > 200 ? key.slice(0, 200) : key;
    if (typeof key === 'symbol') return symbolToString.call(key);
    if (typeof key === 'object' && key !== null) {
      return this.types.isProxy(key) ? '[Proxy]' : `[${this.className(key) ?? 'Object'}]`;
    }
    if (typeof key === 'function') return '[Function]';
    return String(key);
  }
}

function functionText(fn: object): string {
  const name = hasOwn(fn, 'name') ? dataValue(fn, 'name')?.value : undefined;
  return typeof name === 'string' && name !== '' ? `[Function: ${name}]` : '[Function]';
}

function arrayLength(a: object): number {
  const length = dataValue(a, 'length')?.value;
  return typeof length === 'number' ? length : 0;
}
