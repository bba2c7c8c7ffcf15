import { adapterConformance } from '@posthog-kit/conformance';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expressBridge } from './bridge.ts';

adapterConformance(expressBridge, { describe, it, expect, beforeAll, afterAll, beforeEach });
