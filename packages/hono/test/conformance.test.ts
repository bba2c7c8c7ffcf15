import { adapterConformance } from '@posthog-kit/conformance';
import { honoBridge } from './bridge.ts';

adapterConformance(honoBridge);
