// Flags as posthog-node now wants them (one snapshot, the values on the events), lazily:
// a flag is evaluated the first time it is read, so a request costs what it reads, not
// what the project defines. A request keeps one state per user and inputs: its reads are
// consistent, one `/flags` request serves them all (remote evaluation), and its events
// carry what was read.
import type {
  AllFlagsAndPayloads,
  FlagReadOptions,
  FlagSnapshot,
  FlagValue,
  JsonValue,
} from '../api.ts';
import type { ErrorReporter } from '../errors.ts';
import type { FlagCaches } from './index.ts';
import {
  type EvaluatedFlags,
  type FlagAnswer,
  type FlagRecordingPostHog,
  type FlagRequest,
  responseOf,
} from './result-cache.ts';

/** A flag request without its key: whose flags, with which inputs. */
export type FlagSubject = Omit<FlagRequest, 'key'>;

/** Properties built only when an event is sent. */
type LazyProperties = () => Record<string, unknown> | undefined;

const NONE: FlagAnswer = { result: undefined, event: undefined, failed: false };
/** A read that ran out of its budget: the default, for the rest of the request. */
const SPENT: FlagAnswer = { result: undefined, event: undefined, failed: true };

const flagValue = (answer: FlagAnswer): FlagValue | undefined => responseOf(answer.result);
const copy = <T>(payload: T): T =>
  typeof payload === 'object' && payload !== null ? structuredClone(payload) : payload;

/** What the reader needs from the kit: the narrow host of the flag part. */
export interface FlagReaderHost {
  client: FlagRecordingPostHog;
  caches: FlagCaches | undefined;
  /** Failed `/flags` requests so far (the transport's count). */
  flagFailures(): number;
  errors: ErrorReporter;
  /** How long a request's flag reads may wait for PostHog in all; 0: no budget. */
  budgetMs: number;
  /** Whether the kit evaluates flags locally (a personal key, or store-only definitions). */
  local: boolean;
}

/** The flags of one posthog-node evaluation, read one by one (the event of each built once). */
class FlagSet {
  readonly #answers = new Map<string, FlagAnswer>();
  private readonly client: FlagRecordingPostHog;
  private readonly flags: EvaluatedFlags;
  private readonly failed: boolean;
  /** Evaluated from the local definitions only: every answer is theirs. */
  private readonly local: boolean;

  constructor(
    client: FlagRecordingPostHog,
    flags: EvaluatedFlags,
    failed: boolean,
    local: boolean,
  ) {
    this.client = client;
    this.flags = flags;
    this.failed = failed;
    this.local = local;
  }

  get keys(): string[] {
    return this.flags.keys;
  }

  answer(key: string): FlagAnswer {
    let answer = this.#answers.get(key);
    if (answer) return answer;
    const params = this.client.readFlag(this.flags, key);
    const value = params
      ? params.response
      : this.flags.getFlag(key, { sendFeatureFlagEvents: false });
    const reason = params?.properties.$feature_flag_reason;
    answer = {
      result:
        value === undefined
          ? undefined
          : {
              key,
              enabled: value !== false,
              variant: typeof value === 'string' ? value : undefined,
              payload: this.flags.getFlagPayload(key),
              reason: typeof reason === 'string' ? reason : undefined,
            },
      event: params?.properties,
      failed: this.failed,
      local: this.local || params?.properties.locally_evaluated === true,
    };
    this.#answers.set(key, answer);
    return answer;
  }
}

/** When a request's flag reads started waiting for PostHog. */
export interface RequestClock {
  start: number | undefined;
}

const OUTAGE = 'flags:budget';

/**
 * The latency budget of flag reads on the request path. A request's reads that ask
 * PostHog wait at most `budgetMs` in all, then answer their defaults; the first read
 * that runs out reports the outage once. While it lasts, one read at a time asks PostHog
 * (the probe) and the others answer their defaults at once, so a hung `/flags` costs
 * neither every request its budget nor a pile of open requests; an answer within the
 * budget ends it.
 */
class FlagBudget {
  #out = false;
  #probe: Promise<unknown> | undefined;

  private readonly ms: number;
  private readonly errors: ErrorReporter;

  constructor(ms: number, errors: ErrorReporter) {
    this.ms = ms;
    this.errors = errors;
  }

  async within(work: () => FlagAnswer | Promise<FlagAnswer>, clock: RequestClock) {
    const now = Date.now();
    clock.start ??= now;
    const left = clock.start + this.ms - now;
    if (left <= 0 || (this.#out && this.#probe)) return SPENT;
    const pending = Promise.resolve(work());
    if (this.#out) this.#track(pending);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      pending,
      new Promise<typeof SPENT>((resolve) => {
        timer = setTimeout(resolve, left, SPENT);
        (timer as { unref?: () => void }).unref?.();
      }),
    ]).finally(() => clearTimeout(timer));
    if (outcome === SPENT) {
      clock.start = now - this.ms;
      if (!this.#out) {
        this.#out = true;
        this.#track(pending);
        this.errors.outage(
          OUTAGE,
          undefined,
          `flags: PostHog did not answer within the flag budget (featureFlagsBudgetMs, ${this.ms} ms); flag reads in requests answer their defaults, one read at a time asks again`,
        );
      }
      return SPENT;
    }
    if (this.#out) {
      this.#out = false;
      if (this.errors.recovered(OUTAGE)) {
        this.errors.warn('flags: PostHog answers flag reads within the budget again');
      }
    }
    return outcome;
  }

  #track(pending: Promise<unknown>): void {
    this.#probe = pending;
    const clear = () => {
      if (this.#probe === pending) this.#probe = undefined;
    };
    pending.then(clear, clear);
  }
}

/**
 * A kit's flag reading: memo, result cache, then posthog-node's `evaluateFlags()` (its
 * non-deprecated API), and the `$feature_flag_called` events, sent through posthog-node.
 */
export class FlagReader {
  readonly local: boolean;
  readonly client: FlagRecordingPostHog;
  readonly #host: FlagReaderHost;
  readonly #budget: FlagBudget | undefined;

  constructor(host: FlagReaderHost) {
    this.#host = host;
    this.client = host.client;
    this.local = host.local;
    this.#budget = host.budgetMs > 0 ? new FlagBudget(host.budgetMs, host.errors) : undefined;
  }

  /** Whether the local definitions are loaded: reads are answered from them, never asking PostHog. */
  #answersLocally(): boolean {
    return this.local && this.client.isLocalEvaluationReady();
  }

  /**
   * Whether reading `key` (or every flag) asks PostHog: with remote evaluation, before the
   * local definitions are loaded, or for a flag meant for server evaluation.
   */
  asksPostHog(key: string | undefined): boolean {
    if (!this.#answersLocally()) return true;
    return key !== undefined && this.client.getFeatureFlagEvaluationRuntime(key) === 'server';
  }

  /**
   * One flag: memo (synchronous), result cache, then `source` (default: posthog-node
   * scoped to it). A flag the loaded local definitions do not have is missing, as in
   * posthog-node's `evaluateFlags()`: no `/flags` request for it.
   */
  one(
    request: FlagRequest,
    sendEvents: boolean | undefined,
    source?: () => Promise<FlagAnswer>,
  ): FlagAnswer | Promise<FlagAnswer> {
    const key = request.key;
    const evaluate =
      source ??
      (async () => {
        const absent =
          this.#answersLocally() && this.client.getFeatureFlagEvaluationRuntime(key) === undefined;
        return (await this.all(request, [key], absent)).answer(key);
      });
    const caches = this.#host.caches;
    return caches ? caches.evaluate(request, sendEvents, evaluate) : evaluate();
  }

  /** Every flag (or `flagKeys`) in one posthog-node evaluation: one `/flags` request when remote. */
  async all(subject: FlagSubject, flagKeys?: string[], onlyLocally = false): Promise<FlagSet> {
    const before = this.#host.flagFailures();
    const { inputs } = subject;
    const flags = await this.client.evaluateFlags(subject.distinctId, {
      groups: inputs.groups,
      personProperties: inputs.personProperties as Record<string, string> | undefined,
      groupProperties: inputs.groupProperties as Record<string, Record<string, string>> | undefined,
      onlyEvaluateLocally: onlyLocally || inputs.onlyEvaluateLocally,
      disableGeoip: inputs.disableGeoip,
      flagKeys,
    });
    return new FlagSet(this.client, flags, this.#host.flagFailures() > before, onlyLocally);
  }

  /** `work` within the request's budget (reads that ask PostHog, on the request path). */
  /** The memo's answer of a flag for a subject, synchronously: no budget, no evaluation to set up. */
  remembered(subject: FlagSubject, key: string): FlagAnswer | undefined {
    return this.#host.caches?.memo?.lookup(key, subject.inputsKey);
  }

  budgeted(
    key: string | undefined,
    clock: RequestClock | undefined,
    work: () => FlagAnswer | Promise<FlagAnswer>,
  ): FlagAnswer | Promise<FlagAnswer> {
    const budget = this.#budget;
    if (!budget || !clock || !this.asksPostHog(key)) return work();
    return budget.within(work, clock);
  }

  /**
   * A read PostHog could not answer: raise mode throws; otherwise a debug line, since the
   * transport already said once why PostHog is not answering.
   */
  failed(key: string): void {
    const errors = this.#host.errors;
    const message = `flag "${key}": PostHog could not be asked (see the previous error); answering undefined`;
    if (errors.mode === 'raise') errors.foreground('flags', undefined, message);
    else errors.debug(message);
  }

  #warnedAnonymous = false;

  /** A look-up without a distinct id: said once per kit, with what to do. */
  anonymous(): void {
    if (this.#warnedAnonymous) return;
    this.#warnedAnonymous = true;
    this.#host.errors.warn(
      'flag look-ups with no distinct id given and none in the context answer their defaults without asking PostHog: pass { distinctId }, or send X-POSTHOG-DISTINCT-ID (posthog-js does with __add_tracing_headers) to requests behind the middleware',
    );
  }

  /** Sends the `$feature_flag_called` of an answer, with the context's properties. */
  exposed(subject: FlagSubject, key: string, answer: FlagAnswer, context: LazyProperties): void {
    const event = answer.event;
    if (!event || answer.exposed) return;
    answer.exposed = true;
    this.client.sendFlagCalled(
      {
        distinctId: subject.distinctId,
        key,
        response: responseOf(answer.result),
        groups: subject.inputs.groups,
        disableGeoip: subject.inputs.disableGeoip,
        properties: event,
      },
      context,
      event.locally_evaluated === true ? Date.now() : undefined,
    );
  }
}

/**
 * The flags of one user and set of inputs, as read so far: the answers (kept for the
 * state's life, so reads are consistent), the keys read, the events sent. A request keeps
 * one per user and inputs; outside a request each snapshot has its own.
 */
export class FlagState {
  readonly reader: FlagReader | undefined;
  readonly subject: FlagSubject;
  readonly answers = new Map<string, FlagAnswer>();
  /** Keys read with `isEnabled`/`getFlag`, in order: the ones events carry. */
  readonly accessed = new Set<string>();
  // Made on first use: most states answer synchronously (the memo) and send nothing twice.
  #pending: Map<string, Promise<FlagAnswer>> | undefined;
  #sent: Set<string> | undefined;
  readonly #context: LazyProperties;
  readonly #clock: RequestClock | undefined;
  /** Keys the one evaluation of every flag asks for (undefined: all). */
  readonly #fetchKeys: string[] | undefined;
  #all: Promise<FlagSet> | undefined;

  constructor(
    reader: FlagReader | undefined,
    subject: FlagSubject,
    options: { context: LazyProperties; clock?: RequestClock | undefined; fetchKeys?: string[] },
  ) {
    this.reader = reader;
    this.subject = subject;
    this.#context = options.context;
    this.#clock = options.clock;
    this.#fetchKeys = options.fetchKeys;
  }

  /** A flag's answer: kept, pending, or evaluated now (remote evaluation: from the one `/flags`). */
  answer(key: string, sendEvents: boolean | undefined): FlagAnswer | Promise<FlagAnswer> {
    const done = this.answers.get(key);
    if (done) return done;
    const pending = this.#pending?.get(key);
    if (pending) return pending;
    const reader = this.reader;
    if (!reader) return NONE;
    const remembered = reader.remembered(this.subject, key);
    if (remembered) return this.#settle(key, remembered);
    const request: FlagRequest = { ...this.subject, key };
    const source = reader.local
      ? undefined
      : async () => (await this.#allFlags()).answer(key) as FlagAnswer;
    const answer = reader.budgeted(key, this.#clock, () => reader.one(request, sendEvents, source));
    if (!(answer instanceof Promise)) return this.#settle(key, answer);
    const settled = answer.then((a) => this.#settle(key, a));
    this.#pending ??= new Map();
    this.#pending.set(key, settled);
    return settled;
  }

  #settle(key: string, answer: FlagAnswer): FlagAnswer {
    this.#pending?.delete(key);
    this.answers.set(key, answer);
    if (answer.failed && answer.result === undefined && answer !== SPENT) this.reader?.failed(key);
    return answer;
  }

  #allFlags(): Promise<FlagSet> {
    const reader = this.reader as FlagReader;
    this.#all ??= reader.all(this.subject, this.#fetchKeys);
    return this.#all;
  }

  /** Every flag, each read once and kept (those read before keep their answer). */
  async allFlags(): Promise<AllFlagsAndPayloads> {
    const reader = this.reader;
    const out: AllFlagsAndPayloads = { featureFlags: {}, featureFlagPayloads: {} };
    if (!reader) return out;
    const set = await reader.budgeted(undefined, this.#clock, () =>
      this.#allFlags().then(() => NONE),
    );
    if (set !== SPENT && this.#all) {
      const flags = await this.#all;
      for (const key of flags.keys) {
        if (!this.answers.has(key) && !this.#pending?.has(key)) {
          this.answers.set(key, flags.answer(key));
        }
      }
    }
    if (this.#pending) await Promise.all(this.#pending.values());
    for (const [key, answer] of this.answers) {
      const value = flagValue(answer);
      if (value === undefined) continue;
      out.featureFlags[key] = value;
      const payload = answer.result?.payload;
      if (payload !== undefined && payload !== null) {
        out.featureFlagPayloads[key] = copy(payload) as JsonValue;
      }
    }
    return out;
  }

  /** A read (`isEnabled`, `getFlag`): counts for the events, and sends `$feature_flag_called` once. */
  access(key: string, answer: FlagAnswer, send: boolean | undefined): void {
    this.accessed.add(key);
    const reader = this.reader;
    if (!reader || !answer.event || this.#sent?.has(key)) return;
    if (!(send ?? reader.client.sendFlagEventsByDefault)) return;
    this.#sent ??= new Set();
    this.#sent.add(key);
    reader.exposed(this.subject, key, answer, this.#context);
  }
}

/** `$feature/<key>` for each answered flag and `$active_feature_flags`, as posthog-node's `flags` option adds. */
function addEventProperties(
  into: Record<string, unknown>,
  answers: Iterable<[string, FlagAnswer]>,
): void {
  const active: string[] = [];
  for (const [key, answer] of answers) {
    const value = flagValue(answer);
    if (value === undefined) continue;
    into[`$feature/${key}`] = value;
    if (value !== false) active.push(key);
  }
  if (active.length > 0) into.$active_feature_flags = active.sort();
}

/**
 * `FlagSnapshot`: a view on a `FlagState`. A slice (`only`, `onlyAccessed`) holds the
 * answers it was cut with and evaluates nothing: it is meant for `capture({ flags })`.
 */
export class Snapshot implements FlagSnapshot {
  readonly #state: FlagState;
  readonly #sendEvents: boolean | undefined;
  readonly #flagKeys: ReadonlySet<string> | undefined;
  /** A slice's answers; undefined for a live snapshot. */
  readonly #slice: Map<string, FlagAnswer> | undefined;

  constructor(
    state: FlagState,
    options: {
      sendEvents?: boolean | undefined;
      flagKeys?: readonly string[] | undefined;
      slice?: Map<string, FlagAnswer>;
    } = {},
  ) {
    this.#state = state;
    this.#sendEvents = options.sendEvents;
    this.#flagKeys = options.flagKeys ? new Set(options.flagKeys) : undefined;
    this.#slice = options.slice;
  }

  #answer(key: string, send: boolean | undefined): FlagAnswer | Promise<FlagAnswer> {
    if (this.#slice) return this.#slice.get(key) ?? NONE;
    if (this.#flagKeys && !this.#flagKeys.has(key)) return NONE;
    return this.#state.answer(key, send);
  }

  async #read(key: string, options: FlagReadOptions | undefined): Promise<FlagAnswer> {
    const send = options?.sendFeatureFlagEvents ?? this.#sendEvents;
    const answer = await this.#answer(key, send);
    if (!this.#slice || this.#slice.has(key)) this.#state.access(key, answer, send);
    return answer;
  }

  async isEnabled(
    key: string,
    options?: FlagReadOptions & { defaultValue?: boolean | undefined },
  ): Promise<boolean> {
    const answer = await this.#read(key, options);
    return answer.result ? answer.result.enabled : (options?.defaultValue ?? false);
  }

  async getFlag(key: string, options?: FlagReadOptions): Promise<FlagValue | undefined> {
    return flagValue(await this.#read(key, options));
  }

  async getFlagPayload(key: string): Promise<JsonValue | undefined> {
    const answer = await this.#answer(key, false);
    return copy(answer.result?.payload) as JsonValue | undefined;
  }

  /** A flag's full answer, read as `getFlag` reads it. @internal */
  async result(key: string, options?: FlagReadOptions) {
    const result = (await this.#read(key, options)).result;
    return result && { ...result, payload: copy(result.payload) };
  }

  async only(keys: string[]): Promise<FlagSnapshot> {
    const slice = new Map<string, FlagAnswer>();
    for (const key of keys) {
      const answer = await this.#answer(key, false);
      if (answer.result !== undefined) slice.set(key, answer);
    }
    return new Snapshot(this.#state, { sendEvents: this.#sendEvents, slice });
  }

  onlyAccessed(): FlagSnapshot {
    const slice = new Map<string, FlagAnswer>();
    const from = this.#slice ?? this.#state.answers;
    for (const key of this.#state.accessed) {
      const answer = from.get(key);
      if (answer) slice.set(key, answer);
    }
    return new Snapshot(this.#state, { sendEvents: this.#sendEvents, slice });
  }

  /** Every flag's value and payload for this user (each evaluated once). @internal */
  all(): Promise<AllFlagsAndPayloads> {
    return this.#state.allFlags();
  }

  /** What `capture({ flags: snapshot })` adds: the flags this snapshot holds. @internal */
  eventProperties(into: Record<string, unknown>): void {
    const answers = this.#slice ?? this.#state.answers;
    addEventProperties(
      into,
      this.#flagKeys ? [...answers].filter(([key]) => this.#flagKeys?.has(key)) : answers,
    );
  }
}

/** The flags a request read: one state per user and inputs, one budget clock. */
export class RequestFlags {
  readonly clock: RequestClock = { start: undefined };
  /** The first inputs' state: a request mostly reads one user's flags (no map for it). */
  #first: FlagState | undefined;
  #states: Map<string, FlagState> | undefined;

  /** The request's state for these inputs, if it has one. */
  state(subject: FlagSubject): FlagState | undefined {
    const first = this.#first;
    if (first === undefined || first.subject.inputsKey === subject.inputsKey) return first;
    return this.#states?.get(subject.inputsKey);
  }

  /** Adds the state of inputs the request has none for yet. */
  add(state: FlagState): FlagState {
    if (this.#first === undefined) this.#first = state;
    else {
      this.#states ??= new Map();
      this.#states.set(state.subject.inputsKey, state);
    }
    return state;
  }

  /** Every state of the request, the first one first. */
  #all(): Iterable<FlagState> {
    const first = this.#first;
    if (!first) return [];
    return this.#states ? [first, ...this.#states.values()] : [first];
  }

  /**
   * Adds the flags read in the request for `distinctId` to an event's properties, as
   * posthog-node's `flags: snapshot.onlyAccessed()` would (the latest read of a key wins).
   */
  addTo(into: Record<string, unknown>, distinctId: string | undefined): void {
    if (distinctId === undefined) return;
    let read: Map<string, FlagAnswer> | undefined;
    for (const state of this.#all()) {
      if (state.subject.distinctId !== distinctId || state.accessed.size === 0) continue;
      read ??= new Map();
      for (const key of state.accessed) {
        const answer = state.answers.get(key);
        if (answer) read.set(key, answer);
      }
    }
    if (read) addEventProperties(into, read);
  }
}
