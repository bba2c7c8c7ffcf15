// Load and figures for the reliability scenarios: bounded request loops on loopback,
// latencies measured per request, a table printed at the end of each file.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { AdapterBridge } from '@posthog-kit/conformance';
import { expressBridge } from '../../packages/express/test/bridge.ts';
import { fastifyBridge } from '../../packages/fastify/test/bridge.ts';
import { h3Bridge } from '../../packages/h3/test/bridge.ts';
import { honoBridge } from '../../packages/hono/test/bridge.ts';
import { koaBridge } from '../../packages/koa/test/bridge.ts';
import { nestExpressBridge, nestFastifyBridge } from '../../packages/nestjs/test/bridge.ts';

const run = promisify(execFile);

/** Every adapter, driven through its conformance bridge. */
export const bridges: AdapterBridge[] = [
  expressBridge,
  koaBridge,
  honoBridge,
  h3Bridge,
  fastifyBridge,
  nestExpressBridge,
  nestFastifyBridge,
];

export interface LoadResult {
  requests: number;
  /** Requests sent, the unmeasured warm-up included. */
  sent: number;
  failed: number;
  p50: number;
  p99: number;
  /** Every request's latency in ms, sorted. */
  latencies: number[];
}

const child = fileURLToPath(new URL('./load-child.ts', import.meta.url));

/**
 * `requests` GETs, `concurrency` at a time, from a child process; a request fails on a
 * network error or a non-2xx.
 */
export async function drive(url: string, requests: number, concurrency = 10): Promise<LoadResult> {
  const { stdout } = await run(
    process.execPath,
    [child, url, String(requests), String(concurrency)],
    {
      timeout: 60_000,
    },
  );
  return JSON.parse(stdout) as LoadResult;
}

/** The p-th percentile of latencies pooled from several runs. */
export function percentile(runs: LoadResult[], p: number): number {
  const all = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  return all[Math.min(all.length - 1, Math.floor((p / 100) * all.length))] ?? Number.NaN;
}

/** The median of some numbers. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Collects one row per scenario and prints them as a table. */
export class Figures {
  private readonly rows: Array<Record<string, string | number>> = [];
  private readonly title: string;

  constructor(title: string) {
    this.title = title;
  }

  add(row: Record<string, string | number>): void {
    this.rows.push(row);
  }

  print(): void {
    console.log(`\n${this.title}`);
    console.table(this.rows);
  }
}

export const ms = (n: number) => Number(n.toFixed(2));
