// Preloaded (--import) into every app of the deploy scenario, with and without the kit alike:
// - the port the app listens on (3000, as the READMEs write it) becomes a free one, and the
//   address is reported, so apps run as written and side by side;
// - on SIGUSR2 it reports what keeps the event loop alive: process.getActiveResourcesInfo(),
//   every ref'd timer with the stack that created it, every ref'd handle. A process that does
//   not end says where it hangs instead of a test timing out.
// Reports are JSON lines written synchronously to fd 3 (a pipe the test reads): no handle is
// opened, so the reporting itself never keeps the process up. SIGUSR2 listeners are unref'd and
// are not SIGTERM listeners: the kit's "does the app handle the signal" check is unaffected.
import { writeSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';
import timers from 'node:timers';
import { listenOnFreePort } from '../../../test/free-port.mjs';

const FD = 3;
const report = (message) => {
  try {
    writeSync(FD, `${JSON.stringify(message)}\n`);
  } catch {
    // No pipe (the app run by hand): nothing to report to.
  }
};

listenOnFreePort((address) => report({ type: 'listening', ...address }));

/** Timers alive (not fired, not cleared), with where they were made. */
const live = new Map();

function tracked(kind, original) {
  const wrapped = function (callback, delay, ...args) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 16;
    const origin = new Error(); // formatted only if reported
    Error.stackTraceLimit = limit;
    let timer;
    const run =
      typeof callback === 'function' && kind === 'setTimeout'
        ? function (...a) {
            live.delete(timer);
            return callback.apply(this, a);
          }
        : callback;
    timer = original.call(this, run, delay, ...args);
    live.set(timer, { kind, delay, origin });
    return timer;
  };
  // util.promisify.custom and the like.
  for (const key of Object.getOwnPropertySymbols(original)) wrapped[key] = original[key];
  return wrapped;
}

function clearing(original) {
  return function (timer) {
    if (timer && typeof timer === 'object') live.delete(timer);
    return original.call(this, timer);
  };
}

for (const target of [globalThis, timers]) {
  target.setTimeout = tracked('setTimeout', globalThis.setTimeout);
  target.setInterval = tracked('setInterval', globalThis.setInterval);
  target.clearTimeout = clearing(globalThis.clearTimeout);
  target.clearInterval = clearing(globalThis.clearInterval);
}
syncBuiltinESMExports();

/** `at fn (file:///…/node_modules/.pnpm/pkg@1/node_modules/pkg/dist/x.mjs:1:2)` → `fn (pkg/dist/x.mjs:1:2)`. */
const frames = (error) =>
  (error.stack ?? '')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().replace(/^at /, ''))
    .filter((line) => !line.includes('preload.mjs'))
    .map((line) => line.replace(/(?:file:\/\/)?\/\S*\/node_modules\/(?!\.pnpm)/, ''))
    .map((line) => line.replace(/(?:file:\/\/)?\/\S*\/packages\//, 'packages/'))
    .slice(0, 8);

function describeHandle(handle) {
  const name = handle?.constructor?.name ?? typeof handle;
  const ref = typeof handle?.hasRef === 'function' ? handle.hasRef() : handle?._handle?.hasRef?.();
  const detail =
    handle instanceof net.Socket
      ? `${handle.localAddress ?? '?'}:${handle.localPort ?? '?'} -> ${handle.remoteAddress ?? '?'}:${handle.remotePort ?? '?'}`
      : handle instanceof net.Server
        ? `listening ${JSON.stringify(handle.address())}`
        : '';
  return { name, ref: ref !== false, detail };
}

process.on('SIGUSR2', () => {
  const held = [...live]
    .filter(([timer]) => !timer._destroyed && timer.hasRef?.() !== false)
    .map(([, t]) => ({ kind: t.kind, delayMs: t.delay, createdAt: frames(t.origin) }));
  const stdio = [process.stdout, process.stderr];
  const handles = process
    ._getActiveHandles()
    .filter((handle) => !stdio.includes(handle))
    .map(describeHandle)
    .filter((h) => h.ref);
  report({ type: 'active', resources: process.getActiveResourcesInfo(), timers: held, handles });
});
