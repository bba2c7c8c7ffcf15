import type {
  FlagCondition,
  FlagDefinition,
  FlagDefinitionInput,
  FlagFilters,
  FlagPropertyFilter,
} from './types.ts';

/** A property filter in `flag()` shorthand: `{ key: 'plan', value: 'pro' }`. */
export interface FlagPropertyInput {
  /** Property name (or cohort id with `type: 'cohort'`). */
  key: string;
  /** Value to compare with; may be left out for `is_set` / `is_not_set`. @default undefined */
  value?: unknown;
  /** PostHog operator. @default 'exact' */
  operator?: string;
  /** `person`, `group`, `cohort` or `flag`. @default 'group' for group flags, else 'person' */
  type?: string;
  /** Inverts the match (cohort filters). @default undefined */
  negation?: boolean;
}

/** A release condition in `flag()` shorthand. */
export interface FlagConditionInput {
  /** Filters that must all match. @default [] */
  properties?: FlagPropertyInput[];
  /** Percentage of matching users who get the flag. @default the flag's `rollout` */
  rollout?: number;
  /** Variant forced for users matching this condition. @default undefined */
  variant?: string;
}

/** Options of `flag()`. */
export interface FlagOptions {
  /** Percentage of users (of those matching a condition) who get the flag. @default 100 */
  rollout?: number;
  /** Release conditions, any of which enables the flag; none means everyone. @default [] */
  conditions?: FlagConditionInput[];
  /** Variant key to percentage (adding up to 100) for a multivariate flag. @default undefined */
  variants?: Record<string, number>;
  /** Payload of a boolean flag when it is enabled (any JSON value). @default undefined */
  payload?: unknown;
  /** Payloads by variant key (or `'true'`), as JSON values. @default {} */
  payloads?: Record<string, unknown>;
  /** Whether the flag is switched on. @default true */
  active?: boolean;
  /** Group type index: makes it a group flag, bucketed by group key. @default undefined */
  groupTypeIndex?: number;
  /** Experience continuity (not evaluable by the emulator, as in local evaluation). @default false */
  ensureExperienceContinuity?: boolean;
  /** Flag id. @default a stable number derived from the key */
  id?: number;
  /** Description. @default '' */
  name?: string;
  /** Any other definition fields, e.g. `{ evaluation_runtime: 'server' }`. @default {} */
  extra?: Record<string, unknown>;
}

const fail = (key: string, message: string): never => {
  throw new Error(`[posthog-kit/testing] flag('${key}'): ${message}`);
};

const checkPercent = (key: string, what: string, value: number): number => {
  if (!Number.isFinite(value) || value < 0 || value > 100) {
    fail(key, `${what} must be a number from 0 to 100, got ${String(value)}`);
  }
  return value;
};

/** A stable positive id from the key, so definitions look like PostHog's without a counter. */
export function idFromKey(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return (hash % 1_000_000_000) + 1;
}

const toFilter = (property: FlagPropertyInput, groupTypeIndex?: number): FlagPropertyFilter => {
  const operator = property.operator ?? 'exact';
  const type = property.type ?? (groupTypeIndex === undefined ? 'person' : 'group');
  return {
    key: property.key,
    // PostHog writes the operator as the value of is_set / is_not_set filters.
    value: property.value ?? (operator.startsWith('is_') ? operator : null),
    operator,
    type,
    ...(type === 'group' && groupTypeIndex !== undefined && { group_type_index: groupTypeIndex }),
    ...(property.negation !== undefined && { negation: property.negation }),
  };
};

/**
 * Builds a full PostHog flag definition from a short description:
 * `flag('new-checkout', { rollout: 50 })`,
 * `flag('plan-gate', { conditions: [{ properties: [{ key: 'plan', value: 'pro' }] }] })`,
 * `flag('exp', { variants: { control: 50, test: 50 }, payloads: { test: { color: 'red' } } })`.
 */
export function flag(key: string, options: FlagOptions = {}): FlagDefinition {
  const rollout = checkPercent(key, 'rollout', options.rollout ?? 100);
  const conditions = options.conditions?.length ? options.conditions : [{}];
  const groups: FlagCondition[] = conditions.map((condition) => ({
    properties: (condition.properties ?? []).map((p) => toFilter(p, options.groupTypeIndex)),
    rollout_percentage: checkPercent(key, 'condition rollout', condition.rollout ?? rollout),
    ...(condition.variant !== undefined && { variant: condition.variant }),
  }));

  let multivariate: FlagFilters['multivariate'] = null;
  if (options.variants) {
    const entries = Object.entries(options.variants);
    const total = entries.reduce((sum, [, share]) => sum + share, 0);
    if (entries.length === 0 || Math.abs(total - 100) > 1e-9) {
      fail(key, `variant percentages must add up to 100, got ${total}`);
    }
    multivariate = {
      variants: entries.map(([variant, share]) => ({
        key: variant,
        name: variant,
        rollout_percentage: checkPercent(key, `variant '${variant}'`, share),
      })),
    };
  }
  for (const condition of groups) {
    const forced = condition.variant;
    if (forced && !multivariate?.variants.some((v) => v.key === forced)) {
      fail(key, `condition variant '${forced}' is not one of the flag's variants`);
    }
  }

  const payloads: Record<string, string> = {};
  const payloadValues = { ...(options.payload !== undefined && { true: options.payload }) };
  Object.assign(payloadValues, options.payloads);
  for (const [value, payload] of Object.entries(payloadValues)) {
    // PostHog stores payloads as JSON strings; posthog-node parses them.
    payloads[value] = JSON.stringify(payload);
  }

  return {
    id: options.id ?? idFromKey(key),
    key,
    name: options.name ?? '',
    active: options.active ?? true,
    deleted: false,
    ensure_experience_continuity: options.ensureExperienceContinuity ?? false,
    filters: {
      groups,
      multivariate,
      payloads,
      aggregation_group_type_index: options.groupTypeIndex ?? null,
    },
    ...options.extra,
  };
}

/** Fills the fields a hand-written definition may leave out, so the served JSON looks like PostHog's. */
export function normalizeFlag(input: FlagDefinitionInput): FlagDefinition {
  if (typeof input?.key !== 'string' || input.key === '') {
    throw new Error(
      `[posthog-kit/testing] flags: every definition needs a string "key", got ${JSON.stringify(input)}`,
    );
  }
  return {
    ...input,
    id: input.id ?? idFromKey(input.key),
    key: input.key,
    name: input.name ?? '',
    active: input.active ?? true,
    deleted: input.deleted ?? false,
    ensure_experience_continuity: input.ensure_experience_continuity ?? false,
    // A definition written without filters is meant to be on; `filters: {}` stays off, as in PostHog.
    filters: input.filters ?? { groups: [{ properties: [], rollout_percentage: 100 }] },
  };
}
