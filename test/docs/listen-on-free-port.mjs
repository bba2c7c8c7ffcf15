// Preloaded (--import) into a README's server block: whatever port the block listens on
// (3000, as READMEs say), it gets a free one, and the address is written to
// DOCTEST_LISTEN_FILE, so blocks run as written and side by side.
import { renameSync, writeFileSync } from 'node:fs';
import net from 'node:net';

const file = process.env.DOCTEST_LISTEN_FILE;
const listen = net.Server.prototype.listen;

net.Server.prototype.listen = function (...args) {
  const [first] = args;
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    args[0] = 0;
  } else if (first && typeof first === 'object' && 'port' in first) {
    args[0] = { ...first, port: 0 };
  }
  this.once('listening', () => {
    const address = this.address();
    if (file && address && typeof address === 'object') {
      // Written whole or not at all: the test polls for the file.
      writeFileSync(`${file}.tmp`, JSON.stringify(address));
      renameSync(`${file}.tmp`, file);
    }
  });
  return listen.apply(this, args);
};
