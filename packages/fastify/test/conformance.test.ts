import { adapterConformance } from '@posthog-kit/conformance';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fastifyBridge } from './bridge.ts';

adapterConformance(fastifyBridge, { describe, it, expect, beforeAll, afterAll, beforeEach });
