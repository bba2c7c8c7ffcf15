import { koaBridge } from './apps/koa.ts';
import { browserSuite } from './suite.ts';

browserSuite(koaBridge);
