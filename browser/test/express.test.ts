import { expressBridge } from './apps/express.ts';
import { browserSuite } from './suite.ts';

browserSuite(expressBridge);
