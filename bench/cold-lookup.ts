// Why a per-user look-up costs what it does on the request path: a `Map.get` keyed by the
// distinct id a request just parsed from its header, in a plain Node server with 1,000 users,
// first (the user's entry cold in memory, the string's hash not yet computed) and then again
// at once (warm). The memo's look-up pays the first; no framework, no posthog-node here.
//
//   node bench/cold-lookup.ts [--users 1000] [--requests 20000]
import { Agent, createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { argValue } from './lib/process.ts';

const users = Number(argValue('users', '1000'));
const requests = Number(argValue('requests', '20000'));
const byFlag = new Map<string, { enabled: boolean }>();
for (let i = 0; i < users; i++) byFlag.set(`user-${i}`, { enabled: i % 2 === 0 });

let cold = 0n;
let warm = 0n;
let served = 0;
const server = createServer((req, res) => {
  const id = req.headers['x-posthog-distinct-id'] as string;
  let t = process.hrtime.bigint();
  const first = byFlag.get(id);
  cold += process.hrtime.bigint() - t;
  t = process.hrtime.bigint();
  const again = byFlag.get(id);
  warm += process.hrtime.bigint() - t;
  served++;
  res.end(first && again ? 'ok' : 'missing');
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;
const agent = new Agent({ keepAlive: true, maxSockets: 20 });
const one = (i: number) =>
  new Promise<void>((resolve) => {
    const headers = { 'x-posthog-distinct-id': `user-${i % users}` };
    get({ port, host: '127.0.0.1', agent, path: '/', headers }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
  });
for (let sent = 0; sent < requests; sent += users) {
  await Promise.all(Array.from({ length: Math.min(users, requests - sent) }, (_, i) => one(i)));
}
agent.destroy();
server.close();
const ns = (total: bigint) => (Number(total) / served).toFixed(0);
console.log(
  `Map.get of the request's distinct id, ${users} users, ${served} requests: first ${ns(cold)} ns, again ${ns(warm)} ns (each including about 30-50 ns of hrtime)`,
);
