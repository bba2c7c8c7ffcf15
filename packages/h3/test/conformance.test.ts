import { adapterConformance } from '@posthog-kit/conformance';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { h3Bridge } from './bridge.ts';

adapterConformance(h3Bridge, { describe, it, expect, beforeAll, afterAll, beforeEach });
