/**
 * The adapter conformance suite: every posthog-kit adapter (ours and third-party
 * ones) runs it through a small bridge, the way every Keyv store runs
 * `@keyv/test-suite`. Real HTTP, posthog-node talking to the emulator. One file per
 * capability under cases/; the runner is a parameter, so any Jest-like runner works.
 */
import { errorCases } from './cases/errors.ts';
import { flagCases } from './cases/flags.ts';
import { idCases } from './cases/ids.ts';
import { isolationCases } from './cases/isolation.ts';
import { requestCases } from './cases/requests.ts';
import { sugarCases } from './cases/sugar.ts';
import { tagCases } from './cases/tags.ts';
import { viewCases } from './cases/views.ts';
import { harness } from './harness.ts';

export { streamOf } from './harness.ts';

import type { AdapterBridge, TestRunner } from './types.ts';

export type { Suite } from './harness.ts';
export type {
  AdapterBridge,
  AppSpec,
  Matchers,
  NeutralHandler,
  NeutralRequest,
  NeutralResponse,
  RouteSpec,
  RunningApp,
  ServerlessFetch,
  TestRunner,
} from './types.ts';

/** Every capability, by name: run one alone with `adapterConformance(bridge, runner, ['errors'])`. */
export const CAPABILITIES = {
  ids: idCases,
  tags: tagCases,
  sugar: sugarCases,
  errors: errorCases,
  views: viewCases,
  requests: requestCases,
  isolation: isolationCases,
  flags: flagCases,
} as const;

/** Runs the conformance suite for one adapter, registering its cases with `runner`. */
export function adapterConformance(
  bridge: AdapterBridge,
  runner: TestRunner,
  only?: readonly (keyof typeof CAPABILITIES)[],
): void {
  runner.describe(`${bridge.name} adapter conformance`, () => {
    const suite = harness(bridge, runner);
    for (const [name, cases] of Object.entries(CAPABILITIES)) {
      if (only && !only.includes(name as keyof typeof CAPABILITIES)) continue;
      runner.describe(name, () => cases(suite));
    }
  });
}
