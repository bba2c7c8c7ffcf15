import { adapterConformance } from '@posthog-kit/conformance';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { honoBridge } from './bridge.ts';

adapterConformance(honoBridge, { describe, it, expect, beforeAll, afterAll, beforeEach });
