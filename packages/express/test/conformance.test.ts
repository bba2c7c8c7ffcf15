import { adapterConformance } from '@posthog-kit/conformance';
import { expressBridge } from './bridge.ts';

adapterConformance(expressBridge);
