// For preloads (--import) that run an app as its README writes it: whatever port the app
// listens on (3000, as READMEs say), it gets a free one, and `onListening` gets the address,
// so apps run as written and side by side.
import net from 'node:net';

/** Patches `net.Server.prototype.listen` for this process: a numeric port becomes 0. */
export function listenOnFreePort(onListening) {
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
      if (address && typeof address === 'object') onListening(address);
    });
    return listen.apply(this, args);
  };
}
