import type { EvaluationInput, FlagOutcome } from './evaluator.ts';
import type { EndpointKind, FlagDefinition, GroupTypeMapping, RecordedEvent } from './types.ts';

const BATCH_PATHS = new Set(['/batch', '/e', '/i/v0/e', '/capture', '/track', '/i/v0/ai/batch']);
const FLAGS_PATHS = new Set(['/flags', '/decide']);
const DEFINITIONS_PATHS = new Set(['/flags/definitions', '/api/feature_flag/local_evaluation']);

/** Which endpoint a path is, trailing slashes ignored. */
export function classify(path: string): EndpointKind {
  const trimmed = path.replace(/\/+$/, '');
  if (BATCH_PATHS.has(trimmed)) return 'batch';
  if (FLAGS_PATHS.has(trimmed)) return 'flags';
  if (DEFINITIONS_PATHS.has(trimmed)) return 'definitions';
  return 'other';
}

type JsonObject = Record<string, unknown>;

export const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const str = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== '' ? value : undefined;

const idString = (value: unknown): string | undefined =>
  typeof value === 'number' && Number.isFinite(value) ? String(value) : str(value);

/** A result, or the message of a 400 answer. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** A capture request: the key it carries and its events, normalised. */
export interface BatchRequest {
  apiKey: string | undefined;
  events: RecordedEvent[];
}

/** Reads `{ api_key, batch: [...] }`, a bare array, or one event (the `/e/` and `/capture/` shapes). */
export function readBatch(
  body: unknown,
  query: URLSearchParams,
  receivedAt: number,
): Parsed<BatchRequest> {
  let items: unknown[];
  let root: JsonObject = {};
  if (Array.isArray(body)) {
    items = body;
  } else if (isObject(body) && Array.isArray(body.batch)) {
    items = body.batch;
    root = body;
  } else if (isObject(body) && typeof body.event === 'string') {
    items = [body];
    root = body;
  } else {
    return { ok: false, error: 'expected {"api_key": "...", "batch": [events]}' };
  }
  const first = items.find(isObject);
  const firstProperties = isObject(first?.properties) ? first.properties : {};
  const apiKey =
    str(root.api_key) ??
    str(root.token) ??
    str(query.get('api_key')) ??
    str(query.get('token')) ??
    str(first?.api_key) ??
    str(firstProperties.token);

  const events: RecordedEvent[] = [];
  for (const [index, item] of items.entries()) {
    if (!isObject(item) || !str(item.event)) {
      return { ok: false, error: `batch[${index}] is not an event: it needs a string "event"` };
    }
    const properties = isObject(item.properties) ? item.properties : {};
    const distinctId =
      idString(item.distinct_id) ?? idString(properties.distinct_id) ?? idString(item.$distinct_id);
    if (distinctId === undefined) {
      return { ok: false, error: `batch[${index}] ("${item.event}") has no distinct_id` };
    }
    events.push({
      event: item.event as string,
      distinctId,
      properties,
      timestamp: str(item.timestamp),
      uuid: str(item.uuid),
      receivedAt,
      raw: item,
    });
  }
  return { ok: true, value: { apiKey, events } };
}

/** A `/flags` request, normalised. */
export interface FlagsRequest extends Omit<EvaluationInput, 'flagKeys'> {
  token: string | undefined;
  flagKeys: string[] | undefined;
  runtime: string | undefined;
  contexts: string[];
}

const stringRecord = (value: unknown): Record<string, string> => {
  const out: Record<string, string> = {};
  if (!isObject(value)) return out;
  for (const [name, id] of Object.entries(value)) {
    const text = idString(id);
    if (text !== undefined) out[name] = text;
  }
  return out;
};

const objectRecord = (value: unknown): Record<string, Record<string, unknown>> => {
  const out: Record<string, Record<string, unknown>> = {};
  if (!isObject(value)) return out;
  for (const [name, props] of Object.entries(value)) if (isObject(props)) out[name] = props;
  return out;
};

const stringList = (value: unknown): string[] | undefined =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined;

// Server SDKs do not declare a runtime; PostHog infers it from their User-Agent.
const SERVER_SDK_AGENT = /^posthog-(node|python|ruby|go|php|java|dotnet|elixir|rust)/i;

export function readFlagsRequest(
  body: unknown,
  query: URLSearchParams,
  userAgent: string | undefined,
): Parsed<FlagsRequest> {
  if (!isObject(body)) return { ok: false, error: 'expected a JSON object body' };
  const distinctId = idString(body.distinct_id);
  const token = str(body.token) ?? str(body.api_key) ?? str(query.get('token'));
  const personProperties = isObject(body.person_properties) ? { ...body.person_properties } : {};
  // posthog-node lifts $device_id out of the person properties; device bucketing reads it there.
  if (body.$device_id !== undefined && personProperties.$device_id === undefined) {
    personProperties.$device_id = body.$device_id;
  }
  const declared = str(body.evaluation_runtime);
  return {
    ok: true,
    value: {
      token,
      distinctId: distinctId ?? '',
      groups: stringRecord(body.groups),
      personProperties,
      groupProperties: objectRecord(body.group_properties),
      flagKeys: stringList(body.flag_keys_to_evaluate),
      runtime: declared ?? (SERVER_SDK_AGENT.test(userAgent ?? '') ? 'server' : undefined),
      contexts:
        stringList(body.evaluation_contexts) ?? stringList(body.evaluation_environments) ?? [],
    },
  };
}

/** The flags a `/flags` answer covers: active, not deleted, for this runtime and these contexts. */
export function selectFlags(
  definitions: readonly FlagDefinition[],
  request: FlagsRequest,
): FlagDefinition[] {
  const keys = request.flagKeys ? new Set(request.flagKeys) : undefined;
  return definitions.filter((definition) => {
    // PostHog leaves globally inactive flags out of remote answers (posthog-node relies on it).
    if (!definition.active || definition.deleted) return false;
    if (keys && !keys.has(definition.key)) return false;
    const runtime = definition.evaluation_runtime;
    if (request.runtime && (runtime === 'server' || runtime === 'client')) {
      if (runtime !== request.runtime) return false;
    }
    const tags =
      stringList(definition.evaluation_contexts) ?? stringList(definition.evaluation_tags);
    if (request.contexts.length > 0 && tags && tags.length > 0) {
      if (!tags.some((tag) => request.contexts.includes(tag))) return false;
    }
    return true;
  });
}

/** One entry of the v2 `flags` object, the shape `@posthog/core` normalises. */
export interface FlagDetail {
  key: string;
  enabled: boolean;
  variant: string | null;
  reason: { code: string; condition_index: number | null; description: string };
  metadata: {
    id: number;
    version: number;
    description: string;
    payload?: string;
    has_experiment?: boolean;
  };
}

const reasonFor = (
  definition: FlagDefinition,
  outcome: FlagOutcome,
  groups: Record<string, string>,
  mapping: GroupTypeMapping,
): FlagDetail['reason'] => {
  const reason = (code: string, description: string) => ({
    code,
    condition_index: null,
    description,
  });
  if ('value' in outcome) {
    if (outcome.value !== false) return reason('condition_match', 'Matched a condition set');
    const index = definition.filters.aggregation_group_type_index;
    const groupType = index === null || index === undefined ? undefined : mapping[String(index)];
    if (index !== null && index !== undefined && !(groupType && groupType in groups)) {
      return reason('no_group_type', 'No group of the flag\u2019s group type was sent');
    }
    return reason('no_condition_match', 'No matching condition set');
  }
  if (outcome.unresolved === 'missing_context') {
    // PostHog would read the person's stored properties; the emulator knows only those sent.
    return reason(
      'no_condition_match',
      'No matching condition set (a property it uses was not sent)',
    );
  }
  if (outcome.unresolved === 'error') {
    return reason('evaluation_error', 'posthog-node could not evaluate this definition');
  }
  return reason(
    'unsupported_by_emulator',
    `Needs data only PostHog has (${outcome.unresolved}); the emulator answers false`,
  );
};

export function flagDetail(
  definition: FlagDefinition,
  outcome: FlagOutcome,
  request: FlagsRequest,
  mapping: GroupTypeMapping,
): FlagDetail {
  const value = 'value' in outcome ? outcome.value : false;
  const payload = 'value' in outcome ? outcome.payload : undefined;
  return {
    key: definition.key,
    enabled: value !== false,
    variant: typeof value === 'string' ? value : null,
    reason: reasonFor(definition, outcome, request.groups, mapping),
    metadata: {
      id: definition.id,
      version: typeof definition.version === 'number' ? definition.version : 1,
      description: definition.name,
      // Payloads travel as JSON strings in v2 answers; @posthog/core parses them back.
      ...(payload !== undefined && payload !== null && { payload: JSON.stringify(payload) }),
      ...(typeof definition.has_experiment === 'boolean' && {
        has_experiment: definition.has_experiment,
      }),
    },
  };
}
