import { honoBridge } from './apps/hono.ts';
import { browserSuite } from './suite.ts';

browserSuite(honoBridge);
