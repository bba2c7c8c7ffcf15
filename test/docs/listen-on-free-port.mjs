// Preloaded (--import) into a README's server block: whatever port the block listens on
// (3000, as READMEs say), it gets a free one, and the address is written to
// DOCTEST_LISTEN_FILE, so blocks run as written and side by side.
import { renameSync, writeFileSync } from 'node:fs';
import { listenOnFreePort } from '../free-port.mjs';

const file = process.env.DOCTEST_LISTEN_FILE;

listenOnFreePort((address) => {
  if (!file) return;
  // Written whole or not at all: the test polls for the file.
  writeFileSync(`${file}.tmp`, JSON.stringify(address));
  renameSync(`${file}.tmp`, file);
});
