import { defineConfig } from 'tsdown';
import { base } from '../../tsdown.base.ts';

export default defineConfig([
  // The emulator is a Node HTTP server, so this package builds for Node, not the neutral base.
  {
    ...base,
    platform: 'node',
  },
  {
    entry: ['src/cli.ts'],
    format: ['esm'],
    fixedExtension: true,
    platform: 'node',
    target: 'es2022',
    sourcemap: false,
    // The library build above cleans dist; cleaning here would race it.
    clean: false,
    dts: false,
    report: false,
  },
]);
