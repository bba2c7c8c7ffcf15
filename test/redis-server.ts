// A real redis-server for tests and benchmarks: started on a free loopback port (never
// 6379), with persistence off, so a restart comes back empty as after a crash.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants } from 'node:fs';
import { connect, createServer } from 'node:net';
import { delimiter, join } from 'node:path';

/** How to get redis-server, for the messages of tests that need it. */
export const REDIS_INSTALL_HINT =
  'install redis-server (Debian/Ubuntu: `apt-get install redis-server`, macOS: `brew install redis`) or put it on PATH';

/** The redis-server binary on PATH (or `REDIS_SERVER_BIN`), if any. */
export function findRedisServer(): string | undefined {
  const candidates = process.env.REDIS_SERVER_BIN
    ? [process.env.REDIS_SERVER_BIN]
    : (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'redis-server'));
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

/** A TCP port nobody listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (port === 0 || port === 6379) return freePort();
  return port;
}

/** Sends PING and resolves true on +PONG; false on any error or after `timeoutMs`. */
function ping(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

/** One redis-server process on a fixed port; `stop()` and `start()` again for outage tests. */
export class RedisServer {
  readonly port: number;
  readonly url: string;
  private readonly bin: string;
  private proc: ChildProcess | undefined;

  private constructor(bin: string, port: number) {
    this.bin = bin;
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
  }

  /** Starts redis-server on `port` (default: a free one). Throws when it is not installed. */
  static async start(options: { port?: number; bin?: string } = {}): Promise<RedisServer> {
    const bin = options.bin ?? findRedisServer();
    if (!bin) throw new Error(`redis-server not found: ${REDIS_INSTALL_HINT}`);
    const server = new RedisServer(bin, options.port ?? (await freePort()));
    await server.start();
    return server;
  }

  /** Whether the process is running. */
  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
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
}
