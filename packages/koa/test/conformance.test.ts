import { adapterConformance } from '@posthog-kit/conformance';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { koaBridge } from './bridge.ts';

adapterConformance(koaBridge, { describe, it, expect, beforeAll, afterAll, beforeEach });
