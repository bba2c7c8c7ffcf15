import { adapterConformance } from '@posthog-kit/testing/conformance';
import { koaBridge } from './bridge.ts';

adapterConformance(koaBridge);
