// One benchmark app: `node apps/server.ts <framework> <config>`; prints `ready {"port": n}`.
// With STATS=1 (and --expose-gc) a second port answers heap and handle counts after a GC,
// outside the framework, for the memory benchmark, and the CPU time used so far (`/cpu`: no GC
// first) for the overhead benchmark's CPU per request. `/profile/start` and `/profile/stop`
// take a V8 CPU profile of the window between them (the profile benchmark's: the requests
// only, not the start-up or the warm-up), answered by `/profile/stop` as JSON.
import { createServer, type Server } from 'node:http';
import { Session } from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import type { Config } from './common.ts';

const [framework, config] = process.argv.slice(2) as [string, Config];
const mod = (await import(`./${framework}.ts`)) as {
  start(config: Config, port: number): Promise<Server>;
};
const server = await mod.start(config, 0);
if (!server.listening) await new Promise((resolve) => server.once('listening', resolve));
const port = (server.address() as AddressInfo).port;

let statsPort: number | undefined;
// CPU time this process has used (user + system), in microseconds.
const cpuMicros = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

if (process.env.STATS === '1') {
  const gc = (globalThis as { gc?: () => void }).gc;
  let profiler: Session | undefined;
  const stats = createServer(async (req, res) => {
    if (req.url === '/profile/start') {
      profiler = new Session();
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
      res.end('{}');
      return;
    }
    if (req.url === '/profile/stop' && profiler) {
      const { profile } = await profiler.post('Profiler.stop');
      profiler.disconnect();
      profiler = undefined;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(profile));
      return;
    }
    if (req.url !== '/cpu') {
      gc?.();
      gc?.();
    }
    const resources: Record<string, number> = {};
    for (const kind of process.getActiveResourcesInfo())
      resources[kind] = (resources[kind] ?? 0) + 1;
    const processListeners = process
      .eventNames()
      .reduce((n, name) => n + process.listenerCount(name), 0);
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        heapUsed: process.memoryUsage().heapUsed,
        resources,
        processListeners,
        cpuMicros: cpuMicros(),
      }),
    );
  });
  await new Promise<void>((resolve) => stats.listen(0, '127.0.0.1', resolve));
  statsPort = (stats.address() as AddressInfo).port;
}
console.log(`ready ${JSON.stringify({ port, statsPort })}`);
process.once('SIGTERM', () => process.exit(0));
