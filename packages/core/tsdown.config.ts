import { defineConfig } from 'tsdown';
import { base } from '../../tsdown.base.ts';

export default defineConfig({
  ...base,
  // The Node-only code-variables half has its own entry; core imports it lazily. The relay
  // command (bin posthog-kit-relay) is Node-only too.
  entry: {
    index: 'src/index.ts',
    'code-variables': 'src/code-variables/index.ts',
    relay: 'src/relay/cli.ts',
  },
});
