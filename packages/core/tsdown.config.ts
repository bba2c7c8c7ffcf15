import { defineConfig } from 'tsdown';
import { base } from '../../tsdown.base.ts';

export default defineConfig({
  ...base,
  // The Node-only code-variables half has its own entry; core imports it lazily.
  entry: { index: 'src/index.ts', 'code-variables': 'src/code-variables/index.ts' },
});
