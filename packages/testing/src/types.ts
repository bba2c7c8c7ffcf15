/** One property filter of a flag condition or cohort, as PostHog writes it. */
export interface FlagPropertyFilter {
  /** Property name, or the flag key (type `flag`) or cohort id (type `cohort`). */
  key: string;
  /** What the value is compared with. */
  value: unknown;
  /** PostHog operator: `exact`, `is_not`, `icontains`, `regex`, `gt`, `is_set`, `in`... @default 'exact' */
  operator?: string;
  /** `person`, `group`, `cohort` or `flag`. @default 'person' */
  type?: string;
  /** Inverts the match (cohort groups). @default false */
  negation?: boolean;
  /** Group type index, for `group` filters. @default undefined */
  group_type_index?: number;
  /** Flags this one depends on, in evaluation order (type `flag`). @default undefined */
  dependency_chain?: string[];
  [field: string]: unknown;
}

/** One release condition ("condition set") of a flag. */
export interface FlagCondition {
  /** Filters that must all match. @default [] */
  properties?: FlagPropertyFilter[];
  /** Share of matching users who get the flag, 0 to 100; null or absent means everyone. @default undefined */
  rollout_percentage?: number | null;
  /** Forces this variant for users matching the condition. @default undefined */
  variant?: string | null;
  /** Per-condition aggregation (mixed person/group targeting). @default undefined */
  aggregation_group_type_index?: number | null;
  [field: string]: unknown;
}

/** A multivariate flag's variant with its share of users. */
export interface FlagVariant {
  /** Variant key, returned as the flag's value. */
  key: string;
  /** Share of users, 0 to 100; the shares of all variants add up to 100. */
  rollout_percentage: number;
  /** Display name. @default undefined */
  name?: string;
}

/** A flag's `filters` object, as PostHog stores it. */
export interface FlagFilters {
  /** Release conditions, any of which enables the flag. @default [] */
  groups?: FlagCondition[];
  /** Variants of a multivariate flag. @default null */
  multivariate?: { variants: FlagVariant[] } | null;
  /** Payloads by value (`"true"` or a variant key), each a JSON string as PostHog stores them. @default {} */
  payloads?: Record<string, unknown>;
  /** Group type index when the flag targets groups instead of persons. @default null */
  aggregation_group_type_index?: number | null;
  [field: string]: unknown;
}

/** A feature flag definition, the object `/flags/definitions` returns for each flag. */
export interface FlagDefinition {
  /** Numeric flag id. */
  id: number;
  /** Flag key. */
  key: string;
  /** Description shown in PostHog. */
  name: string;
  /** Whether the flag is switched on at all. */
  active: boolean;
  /** Deleted flags are left out of every answer. */
  deleted: boolean;
  /** Targeting, variants and payloads. */
  filters: FlagFilters;
  /** Experience continuity needs server-side person data, so the emulator cannot evaluate it. */
  ensure_experience_continuity: boolean;
  /** Version reported in `/flags` metadata. */
  version?: number;
  [field: string]: unknown;
}

/** A flag definition as a test may write it: only `key` is required, the rest gets PostHog's defaults. */
export type FlagDefinitionInput = Partial<FlagDefinition> & { key: string };

/** A cohort's property group, as `/flags/definitions` returns it under `cohorts`. */
export interface CohortPropertyGroup {
  /** How the values combine. */
  type: 'AND' | 'OR';
  /** Nested groups or property filters. */
  values: CohortPropertyGroup[] | FlagPropertyFilter[];
}

/** Group type index (as a string, `"0"`) to group type name (`"company"`). */
export type GroupTypeMapping = Record<string, string>;

/** Cohort id (as a string) to its property group. */
export type CohortDefinitions = Record<string, CohortPropertyGroup>;

/** Which endpoint a request hit. */
export type EndpointKind = 'batch' | 'flags' | 'definitions' | 'other';

/** The endpoint a fault applies to: one kind, or `*` for all of them. */
export type FaultEndpoint = 'batch' | 'flags' | 'definitions' | '*';

/** Answer with this status (and body) instead of the real answer. */
export interface StatusFault {
  /** HTTP status to answer. */
  status: number;
  /** Response body: an object is sent as JSON, a string as text. @default { error: 'injected fault' } */
  body?: unknown;
  /** Extra response headers, for example `Retry-After`. @default {} */
  headers?: Record<string, string>;
  /** Latency added before answering. @default 0 */
  delayMs?: number;
  /** How many requests this fault applies to. @default Infinity */
  times?: number;
}

/** Wait before answering normally. */
export interface DelayFault {
  /** Latency added before answering. */
  delayMs: number;
  /** How many requests this fault applies to. @default Infinity */
  times?: number;
}

/** Destroy the connection without answering, as a crashed server or a reset would. */
export interface DropFault {
  /** Destroy the socket instead of answering. */
  drop: true;
  /** Latency added before dropping. @default 0 */
  delayMs?: number;
  /** How many requests this fault applies to. @default Infinity */
  times?: number;
}

/** A fault to inject into the next requests of an endpoint. */
export type Fault = StatusFault | DelayFault | DropFault;

/** An event the emulator accepted, in arrival order. */
export interface RecordedEvent {
  /** Event name, e.g. `$pageview`. */
  event: string;
  /** The event's `distinct_id`, as a string. */
  distinctId: string;
  /** The event's properties (`$lib`, `$groups`, `$set`... included). */
  properties: Record<string, unknown>;
  /** The event's own ISO timestamp, when it had one. */
  timestamp: string | undefined;
  /** The event's uuid, when it had one. */
  uuid: string | undefined;
  /** When the emulator received it (ms since epoch). */
  receivedAt: number;
  /** The event object exactly as it arrived. */
  raw: Record<string, unknown>;
}

/** One request the emulator received, whatever its outcome. */
export interface RecordedRequest {
  /** HTTP method. */
  method: string;
  /** Path without the query string. */
  path: string;
  /** Query parameters (a parameter without a value is `""`). */
  query: Record<string, string>;
  /** Request headers, lower-cased, with the `authorization` value masked. */
  headers: Record<string, string>;
  /** The parsed JSON body (after gunzip), or undefined when there was none or it was not JSON. */
  body: unknown;
  /** Status answered; 0 when the connection was dropped. */
  status: number;
  /** Which endpoint it hit. */
  endpoint: EndpointKind;
  /** The injected fault that shaped the answer, if any. */
  fault: 'status' | 'delay' | 'drop' | undefined;
  /** When it arrived (ms since epoch). */
  timestamp: number;
}

/** What `waitForEvents` waits for. */
export interface WaitForEventsOptions {
  /** At least this many (matching) events. @default 1 */
  count?: number;
  /** Only events with this name count. @default undefined */
  event?: string;
  /** Only events for which this returns true count. @default undefined */
  predicate?: (event: RecordedEvent) => boolean;
}

/** Options of `setFlags`. */
export interface SetFlagsOptions {
  /** Group type mapping served with the definitions. @default the current mapping */
  groupTypeMapping?: GroupTypeMapping;
  /** Cohorts served with the definitions. @default the current cohorts */
  cohorts?: CohortDefinitions;
}

/** Options of `startEmulator`. */
export interface EmulatorOptions {
  /** Project API key (`api_key` of batches, `token` of `/flags`). @default 'phc_test_emulator' */
  projectApiKey?: string;
  /** Personal API key the definitions endpoint expects as `Authorization: Bearer`. @default 'phx_test_emulator' */
  personalApiKey?: string;
  /** Flag definitions (full PostHog objects, or made with `flag()`). @default [] */
  flags?: readonly FlagDefinitionInput[];
  /** Group type index to name, e.g. `{ '0': 'company' }`. @default {} */
  groupTypeMapping?: GroupTypeMapping;
  /** Cohorts for local evaluation, by id. @default {} */
  cohorts?: CohortDefinitions;
  /** Interface to listen on. @default '127.0.0.1' */
  host?: string;
  /** Port to listen on; 0 picks a free one. @default 0 */
  port?: number;
  /** Print nothing; set to false to log one line per request. @default true */
  quiet?: boolean;
  /**
   * Keep every accepted event in `events`. Off, events are only counted (`eventCount`):
   * for load tests that send millions.
   * @default true
   */
  keepEvents?: boolean;
  /** Where request lines go when not quiet. @default console.log */
  log?: (line: string) => void;
  /** Called for every accepted event. @default undefined */
  onEvent?: (event: RecordedEvent) => void;
  /** Called for every request once it is answered. @default undefined */
  onRequest?: (request: RecordedRequest) => void;
}

/** A running emulator. */
export interface PostHogEmulator {
  /** Base URL to give posthog-node as `host`, e.g. `http://127.0.0.1:54321`. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** The project API key it accepts. */
  readonly projectApiKey: string;
  /** The personal API key the definitions endpoint accepts. */
  readonly personalApiKey: string;
  /** Accepted events, in arrival order. */
  readonly events: readonly RecordedEvent[];
  /** Every request received, in arrival order. */
  readonly requests: readonly RecordedRequest[];
  /** The flag definitions currently served. */
  readonly flags: readonly FlagDefinition[];
  /** The current ETag of the definitions. */
  readonly etag: string;
  /** Requests to the definitions endpoint, whatever their answer. */
  readonly definitionsFetchCount: number;
  /** Definitions requests answered 200 with a body. */
  readonly definitionsServedCount: number;
  /** Definitions requests answered 304 Not Modified. */
  readonly definitionsNotModifiedCount: number;
  /** Requests to `/flags`. */
  readonly flagsRequestCount: number;
  /** Requests to the capture endpoints. */
  readonly batchRequestCount: number;
  /** Events accepted since start or `reset()`, kept or not. */
  readonly eventCount: number;
  /**
   * Resolves with the matching events once enough have arrived: a number waits for that many
   * events, a function for one event it accepts, an object for `count` events that match.
   */
  waitForEvents(
    countOrPredicate: number | ((event: RecordedEvent) => boolean) | WaitForEventsOptions,
    timeoutMs?: number,
  ): Promise<RecordedEvent[]>;
  /** Replaces the flag definitions (and optionally mapping and cohorts); changes the ETag. */
  setFlags(flags: readonly FlagDefinitionInput[], options?: SetFlagsOptions): void;
  /** Injects a fault into the next requests of an endpoint; faults apply in the order added. */
  fault(endpoint: FaultEndpoint, fault: Fault): void;
  /** Removes every fault. */
  clearFaults(): void;
  /** Clears events, requests, counts and faults; keeps flags. */
  reset(): void;
  /** Stops the server and destroys open connections; safe to call twice. */
  close(): Promise<void>;
}
