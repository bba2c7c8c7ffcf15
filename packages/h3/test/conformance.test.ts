import { adapterConformance } from '@posthog-kit/conformance';
import { h3Bridge } from './bridge.ts';

adapterConformance(h3Bridge);
