import { adapterConformance } from '@posthog-kit/testing/conformance';
import { expressBridge } from './bridge.ts';

adapterConformance(expressBridge);
