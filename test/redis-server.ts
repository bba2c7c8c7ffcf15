// Real redis-servers for tests and benchmarks: started on free loopback ports (never
// 6379), with persistence off, so a restart comes back empty as after a crash. One
// server, or a local Redis Cluster (`--cluster-enabled yes` nodes joined with
// `redis-cli --cluster create`), with replicas when a test fails a master over.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';

/** How to get redis-server, for the messages of tests that need it. */
export const REDIS_INSTALL_HINT =
  'install redis-server (Debian/Ubuntu: `apt-get install redis-server`, macOS: `brew install redis`) or put it on PATH';

function findBinary(name: string, override: string | undefined): string | undefined {
  const candidates = override
    ? [override]
    : (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, name));
  for (const file of candidates) {
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // Not there; next.
    }
  }
  return undefined;
}

/** The redis-server binary on PATH (or `REDIS_SERVER_BIN`), if any. */
export function findRedisServer(): string | undefined {
  return findBinary('redis-server', process.env.REDIS_SERVER_BIN);
}

/** redis-cli (next to redis-server, else on PATH, or `REDIS_CLI_BIN`): it creates clusters. */
export function findRedisCli(): string | undefined {
  if (process.env.REDIS_CLI_BIN) return findBinary('redis-cli', process.env.REDIS_CLI_BIN);
  const server = findRedisServer();
  return (
    (server && findBinary('redis-cli', join(dirname(server), 'redis-cli'))) ??
    findBinary('redis-cli', undefined)
  );
}

/** A TCP port nobody listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  // Cluster nodes also listen on port + 10000 (the bus): keep both in range.
  if (port === 0 || port === 6379 || port > 55_000) return freePort();
  return port;
}

/** A Redis reply: RESP2 strings, integers, arrays, nil, or an error. */
export type RedisReply = string | number | null | RedisReply[] | RedisError;

/** An error reply (`-ERR ...`, `-OOM ...`). */
export class RedisError extends Error {}

/** Parses one RESP2 reply at `offset`; undefined when the buffer does not hold it all yet. */
function parseReply(text: string, offset: number): { value: RedisReply; end: number } | undefined {
  const eol = text.indexOf('\r\n', offset);
  if (eol < 0) return undefined;
  const line = text.slice(offset + 1, eol);
  switch (text[offset]) {
    case '+':
      return { value: line, end: eol + 2 };
    case '-':
      return { value: new RedisError(line), end: eol + 2 };
    case ':':
      return { value: Number(line), end: eol + 2 };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: eol + 2 };
      // Lengths are bytes; the replies the helpers read are ASCII.
      if (text.length < eol + 2 + length + 2) return undefined;
      return { value: text.slice(eol + 2, eol + 2 + length), end: eol + 2 + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: eol + 2 };
      const items: RedisReply[] = [];
      let at = eol + 2;
      for (let i = 0; i < count; i++) {
        const item = parseReply(text, at);
        if (!item) return undefined;
        items.push(item.value);
        at = item.end;
      }
      return { value: items, end: at };
    }
    default:
      throw new Error(`unexpected RESP reply: ${JSON.stringify(text.slice(offset, offset + 40))}`);
  }
}

/**
 * Sends one command to 127.0.0.1:`port` and resolves its reply (an error reply resolves as
 * a `RedisError`); rejects on a connection failure or after `timeoutMs`. For the helpers
 * and the benchmarks, not for the kit: the kit talks to Redis through @keyv/redis.
 */
export function redisCommand(port: number, args: string[], timeoutMs = 2_000): Promise<RedisReply> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let buffer = '';
    const done = (error: Error | undefined, value?: RedisReply) => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(value as RedisReply);
    };
    const timer = setTimeout(
      () => done(new Error(`redis ${args[0]} on ${port}: no answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once('error', (error) => done(error));
    socket.once('connect', () => {
      const parts = args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`);
      socket.write(`*${args.length}\r\n${parts.join('')}`);
    });
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      try {
        const reply = parseReply(buffer, 0);
        if (reply) done(undefined, reply.value);
      } catch (error) {
        done(error as Error);
      }
    });
  });
}

/** Sends PING and resolves true on +PONG; false on any error or after `timeoutMs`. */
async function ping(port: number, timeoutMs = 500): Promise<boolean> {
  try {
    return (await redisCommand(port, ['PING'], timeoutMs)) === 'PONG';
  } catch {
    return false;
  }
}

/** `INFO <section>` as a map of its `name:value` lines. */
export async function redisInfo(port: number, section: string): Promise<Map<string, string>> {
  const reply = await redisCommand(port, ['INFO', section]);
  if (typeof reply !== 'string') throw new Error(`INFO ${section}: ${String(reply)}`);
  const out = new Map<string, string>();
  for (const line of reply.split('\r\n')) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) out.set(line.slice(0, at), line.slice(at + 1));
  }
  return out;
}

/** Commands the server has run since its start (or `CONFIG RESETSTAT`), by name. */
export async function commandStats(port: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [name, value] of await redisInfo(port, 'commandstats')) {
    const calls = /calls=(\d+)/.exec(value)?.[1];
    if (name.startsWith('cmdstat_') && calls) out[name.slice('cmdstat_'.length)] = Number(calls);
  }
  return out;
}

export interface RedisServerOptions {
  /** The port (default: a free one). */
  port?: number;
  /** The redis-server binary (default: `findRedisServer()`). */
  bin?: string;
  /** More redis-server arguments, such as `['--maxmemory', '2mb', '--maxmemory-policy', 'noeviction']`. */
  args?: string[];
}

/** One redis-server process on a fixed port; `stop()` and `start()` again for outage tests. */
export class RedisServer {
  readonly port: number;
  readonly url: string;
  private readonly bin: string;
  private readonly extraArgs: string[];
  private proc: ChildProcess | undefined;

  private constructor(bin: string, port: number, args: string[]) {
    this.bin = bin;
    this.port = port;
    this.extraArgs = args;
    this.url = `redis://127.0.0.1:${port}`;
  }

  /** Starts redis-server on `port` (default: a free one). Throws when it is not installed. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const bin = options.bin ?? findRedisServer();
    if (!bin) throw new Error(`redis-server not found: ${REDIS_INSTALL_HINT}`);
    const server = new RedisServer(bin, options.port ?? (await freePort()), options.args ?? []);
    await server.start();
    return server;
  }

  /** Whether the process is running. */
  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The process id while it runs. */
  get pid(): number | undefined {
    return this.running ? this.proc?.pid : undefined;
  }

  /** (Re)starts the server on its port and waits until it answers PING (at most 10 s). */
  async start(): Promise<void> {
    if (this.running) return;
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
    ];
    args.push('--protected-mode', 'no', '--daemonize', 'no', '--loglevel', 'warning');
    args.push(...this.extraArgs);
    const proc = spawn(this.bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    this.proc = proc;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`redis-server exited at start: ${stderr.trim()}`);
      if (await ping(this.port, 200)) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    proc.kill('SIGKILL');
    throw new Error(`redis-server did not answer on port ${this.port} within 10 s`);
  }

  /** Stops the server (SIGKILL: a crash; nothing is saved) and waits for it to exit. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.running) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGKILL');
    await exited;
  }

  /** Sends one command to this server. */
  command(...args: string[]): Promise<RedisReply> {
    return redisCommand(this.port, args);
  }
}

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface RedisClusterOptions {
  /** Masters (at least 3, as Redis Cluster requires). @default 3 */
  masters?: number;
  /** Replicas per master: 1 for failover tests. @default 0 */
  replicas?: number;
  /** `cluster-node-timeout`: how long a master may be unreachable before its replica takes over. @default 1000 */
  nodeTimeoutMs?: number;
}

/** One node's view of itself, from `CLUSTER NODES`. */
export interface ClusterNode {
  id: string;
  port: number;
  master: boolean;
  /** The master's id, for a replica. */
  masterId: string | undefined;
  /** Slot ranges a master serves, as `[from, to]`. */
  slots: Array<[number, number]>;
}

/** `CLUSTER NODES` as the node on `port` sees the cluster. */
export async function clusterTopology(port: number): Promise<ClusterNode[]> {
  const reply = await redisCommand(port, ['CLUSTER', 'NODES']);
  if (typeof reply !== 'string') throw new Error(`CLUSTER NODES on ${port}: ${String(reply)}`);
  return reply
    .trim()
    .split('\n')
    .map((line) => {
      const [id = '', address = '', flags = '', masterId = '', , , , , ...slots] = line.split(' ');
      return {
        id,
        port: Number(address.split('@')[0]?.split(':')[1]),
        master: flags.split(',').includes('master') && !flags.includes('fail'),
        masterId: masterId === '-' ? undefined : masterId,
        slots: slots
          .filter((s) => !s.startsWith('['))
          .map((s) => {
            const [from, to = from] = s.split('-').map(Number);
            return [from, to] as [number, number];
          }),
      };
    });
}

/** The hash slot of a key (its hash tag's, when it has one), asked of the node on `port`. */
export async function clusterKeySlot(port: number, key: string): Promise<number> {
  const slot = await redisCommand(port, ['CLUSTER', 'KEYSLOT', key]);
  if (typeof slot !== 'number') throw new Error(`CLUSTER KEYSLOT: ${String(slot)}`);
  return slot;
}

/** The port of the master that serves `key`, as the node on `port` sees it. */
export async function clusterMasterPort(port: number, key: string): Promise<number> {
  const slot = await clusterKeySlot(port, key);
  const master = (await clusterTopology(port)).find(
    (n) => n.master && n.slots.some(([from, to]) => slot >= from && slot <= to),
  );
  if (!master) throw new Error(`no master serves slot ${slot}`);
  return master.port;
}

/**
 * A local Redis Cluster on loopback: `masters` nodes with `--cluster-enabled yes` on free
 * ports (plus `replicas` each), joined with `redis-cli --cluster create`, every slot
 * covered before `start` resolves. Each node has a directory of its own for
 * `nodes.conf`, so a node killed and started again rejoins as the same node.
 */
export class RedisCluster {
  readonly nodes: RedisServer[];
  private readonly dir: string;

  private constructor(nodes: RedisServer[], dir: string) {
    this.nodes = nodes;
    this.dir = dir;
  }

  /** Starts and joins the nodes; throws (with how to install) when redis-server or redis-cli is missing. */
  static async start(options: RedisClusterOptions = {}): Promise<RedisCluster> {
    const masters = options.masters ?? 3;
    const replicas = options.replicas ?? 0;
    const bin = findRedisServer();
    const cli = findRedisCli();
    if (!bin) throw new Error(`redis-server not found: ${REDIS_INSTALL_HINT}`);
    if (!cli) throw new Error(`redis-cli not found: ${REDIS_INSTALL_HINT}`);
    const dir = mkdtempSync(join(tmpdir(), 'posthog-kit-cluster-'));
    const nodes: RedisServer[] = [];
    try {
      for (let i = 0; i < masters * (1 + replicas); i++) {
        const nodeDir = join(dir, `node-${i}`);
        mkdirSync(nodeDir, { recursive: true });
        nodes.push(
          await RedisServer.start({
            bin,
            args: [
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              join(nodeDir, 'nodes.conf'),
              '--cluster-node-timeout',
              String(options.nodeTimeoutMs ?? 1_000),
              '--dir',
              nodeDir,
              // A replica of a dead master takes over however far behind it is.
              '--cluster-replica-validity-factor',
              '0',
            ],
          }),
        );
      }
      const cluster = new RedisCluster(nodes, dir);
      await run(
        cli,
        [
          '--cluster',
          'create',
          ...nodes.map((n) => `127.0.0.1:${n.port}`),
          '--cluster-replicas',
          String(replicas),
          '--cluster-yes',
        ],
        { timeout: 30_000 },
      );
      await cluster.waitUntilHealthy();
      return cluster;
    } catch (error) {
      await Promise.all(nodes.map((n) => n.stop()));
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** The seed nodes as `POSTHOG_REDIS_URL` takes them: comma-separated URLs. */
  get url(): string {
    return this.nodes.map((n) => n.url).join(',');
  }

  /** The node on `port`. */
  node(port: number): RedisServer {
    const node = this.nodes.find((n) => n.port === port);
    if (!node) throw new Error(`no cluster node on port ${port}`);
    return node;
  }

  /** The topology as a running node sees it. */
  async topology(): Promise<ClusterNode[]> {
    for (const node of this.nodes) {
      if (!node.running) continue;
      const topology = await clusterTopology(node.port).catch(() => undefined);
      if (topology) return topology;
    }
    throw new Error('no cluster node answers');
  }

  /** The master that serves `key` now, and its replicas. */
  async ownerOf(key: string): Promise<{ master: RedisServer; replicas: RedisServer[] }> {
    const seed = this.nodes.find((n) => n.running);
    if (!seed) throw new Error('no cluster node runs');
    const slot = await clusterKeySlot(seed.port, key);
    const topology = await this.topology();
    const master = topology.find(
      (n) => n.master && n.slots.some(([from, to]) => slot >= from && slot <= to),
    );
    if (!master) throw new Error(`no master serves slot ${slot}`);
    const replicas = topology.filter((n) => n.masterId === master.id).map((n) => this.node(n.port));
    return { master: this.node(master.port), replicas };
  }

  /**
   * Waits until every running node says `cluster_state:ok`, every slot is served by a
   * master that runs, and (`replicasInSync`) every replica of a running master is linked.
   */
  async waitUntilHealthy(timeoutMs = 20_000, replicasInSync = true): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      try {
        last = await this.health(replicasInSync);
        if (last === 'ok') return;
      } catch (error) {
        last = String(error);
      }
      await sleep(100);
    }
    throw new Error(`cluster not healthy within ${timeoutMs} ms: ${last}`);
  }

  private async health(replicasInSync: boolean): Promise<string> {
    for (const node of this.nodes) {
      if (!node.running) continue;
      const state = await node.command('CLUSTER', 'INFO');
      if (typeof state !== 'string' || !state.includes('cluster_state:ok')) {
        return `node ${node.port}: cluster_state not ok`;
      }
      const repl = await redisInfo(node.port, 'replication');
      if (replicasInSync && repl.get('role') === 'slave') {
        if (repl.get('master_link_status') !== 'up') return `replica ${node.port}: link down`;
      }
    }
    const topology = await this.topology();
    let covered = 0;
    for (const n of topology) {
      if (!n.master || !this.node(n.port).running) continue;
      for (const [from, to] of n.slots) covered += to - from + 1;
    }
    return covered === 16_384 ? 'ok' : `${covered} of 16384 slots served`;
  }

  /**
   * Fails the master of `key` over to its replica. `graceful`: `CLUSTER FAILOVER` on the
   * replica (no write lost); else the master is killed with SIGKILL and the replica takes
   * over by itself after the node timeout. Resolves with the old and the new master.
   */
  async failover(
    key: string,
    mode: 'graceful' | 'kill',
  ): Promise<{ old: RedisServer; now: RedisServer }> {
    const { master, replicas } = await this.ownerOf(key);
    const replica = replicas[0];
    if (!replica) throw new Error('failover needs a cluster started with replicas');
    if (mode === 'graceful') {
      const reply = await replica.command('CLUSTER', 'FAILOVER');
      if (reply instanceof RedisError) throw reply;
    } else {
      await master.stop();
    }
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const repl = await redisInfo(replica.port, 'replication').catch(() => undefined);
      if (repl?.get('role') === 'master') {
        await this.waitUntilHealthy(20_000, false);
        return { old: master, now: replica };
      }
      await sleep(50);
    }
    throw new Error(`replica ${replica.port} did not take over within 20 s`);
  }

  /** Stops every node and removes their directories. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
