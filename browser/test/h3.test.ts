import { h3Bridge } from './apps/h3.ts';
import { browserSuite } from './suite.ts';

browserSuite(h3Bridge);
