// Child processes for benchmarks: each app, the emulator and the load generator
// run in their own process, as they would in production.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';

export interface Started<T> {
  proc: ChildProcess;
  info: T;
  stop(): Promise<void>;
}

/** Spawns `node [nodeArgs] script [args]` and waits for its `ready <json>` line. */
export async function startNode<T>(
  script: string,
  args: string[],
  options: {
    nodeArgs?: string[];
    env?: Record<string, string>;
    timeoutMs?: number;
    ipc?: boolean;
    /** CPUs to pin the child to (taskset's list syntax), when pinning is possible. */
    cpus?: string | undefined;
  } = {},
): Promise<Started<T>> {
  const command = [process.execPath, ...(options.nodeArgs ?? []), script, ...args];
  if (options.cpus !== undefined) command.unshift('taskset', '-c', options.cpus);
  const proc = spawn(command[0] as string, command.slice(1), {
    stdio: options.ipc ? ['ignore', 'pipe', 'inherit', 'ipc'] : ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...options.env },
  });
  const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
  const info = await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${script} ${args.join(' ')}: not ready in time`)),
      options.timeoutMs ?? 30_000,
    );
    proc.once('exit', (code) =>
      reject(new Error(`${script} ${args.join(' ')} exited with ${code}`)),
    );
    lines.on('line', (line) => {
      if (!line.startsWith('ready ')) return;
      clearTimeout(timer);
      resolve(JSON.parse(line.slice('ready '.length)) as T);
    });
  });
  return {
    proc,
    info,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await once(proc, 'exit');
      clearTimeout(timer);
    },
  };
}

/** The median of some numbers. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Reads `--name value` and `--flag` arguments. */
export function argValue(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? (process.argv[i + 1] as string) : fallback;
}

/** Asks a child started with `ipc` something and waits for its answer. */
export function ask<T>(proc: ChildProcess, message: string): Promise<T> {
  return new Promise((resolve) => {
    proc.once('message', (answer) => resolve(answer as T));
    proc.send(message);
  });
}

/**
 * On a machine with two or more CPUs and taskset, pins this process (the load
 * generator) and returns the CPU lists for the app and for the other helpers, so the
 * app under test has a core to itself and rounds compare like with like. Off with
 * `--no-pin`.
 */
export function pinning(): { app?: string; others?: string } {
  if (process.argv.includes('--no-pin')) return {};
  const count = availableParallelism();
  if (count < 2) return {};
  try {
    const last = String(count - 1);
    const others = count > 2 ? `0-${count - 2}` : '0';
    execFileSync('taskset', ['-pc', others, String(process.pid)], { stdio: 'ignore' });
    return { app: last, others };
  } catch {
    return {};
  }
}
