import { adapterConformance } from '@posthog-kit/conformance';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { nestExpressBridge, nestFastifyBridge } from './bridge.ts';

const runner = { describe, it, expect, beforeAll, afterAll, beforeEach };
adapterConformance(nestExpressBridge, runner);
adapterConformance(nestFastifyBridge, runner);
