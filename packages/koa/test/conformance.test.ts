import { adapterConformance } from '@posthog-kit/conformance';
import { koaBridge } from './bridge.ts';

adapterConformance(koaBridge);
