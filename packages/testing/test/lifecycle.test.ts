import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  flag,
  type RecordedRequest,
  startEmulator,
  startEmulatorUnlessConfigured,
} from '@posthog-kit/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { clientFor, post, shutdownClients } from './helpers.ts';

afterEach(() => shutdownClients());

/** One keep-alive GET that leaves its socket open in the agent's pool. */
const keepAliveGet = (url: string, agent: Agent) =>
  new Promise<number>((resolve, reject) => {
    request(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    })
      .on('error', reject)
      .end();
  });

describe('lifecycle', () => {
  it('closes promptly with keep-alive sockets and requests in flight; twice is fine', async () => {
    const emulator = await startEmulator();
    const agent = new Agent({ keepAlive: true });
    expect(await keepAliveGet(`${emulator.url}/`, agent)).toBe(200);
    const client = clientFor(emulator);
    client.capture({ distinctId: 'u', event: 'pooled' });
    await client.flush();

    emulator.fault('flags', { delayMs: 30_000 });
    const stuck = post(`${emulator.url}/flags/?v=2`, {
      token: 'phc_test_emulator',
      distinct_id: 'u',
    });
    const waiting = expect(emulator.waitForEvents(5, 30_000)).rejects.toThrow(/closed/);
    await new Promise((r) => setTimeout(r, 50));

    const started = Date.now();
    await Promise.all([emulator.close(), emulator.close()]);
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(stuck).rejects.toThrow();
    await waiting;
    await expect(fetch(`${emulator.url}/`)).rejects.toThrow();
    agent.destroy();
  });

  it('reports a busy port clearly', async () => {
    const first = await startEmulator();
    try {
      await expect(startEmulator({ port: first.port })).rejects.toThrow(
        /cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/,
      );
    } finally {
      await first.close();
    }
  });

  it('logs one line per request when not quiet, and calls the hooks', async () => {
    const lines: string[] = [];
    const seen: RecordedRequest[] = [];
    const emulator = await startEmulator({
      quiet: false,
      log: (line) => lines.push(line),
      onRequest: (r) => seen.push(r),
      projectApiKey: 'phc_custom',
    });
    try {
      await post(`${emulator.url}/batch/`, {
        api_key: 'phc_custom',
        batch: [{ event: 'e', distinct_id: 'd' }],
      });
      await fetch(`${emulator.url}/nowhere`);
      expect(lines).toEqual(['POST /batch/ -> 200 (1 event)', 'GET /nowhere -> 404']);
      expect(seen.map((r) => [r.endpoint, r.status])).toEqual([
        ['batch', 200],
        ['other', 404],
      ]);
    } finally {
      await emulator.close();
    }
  });
});

describe('CLI', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
  });

  it('prints its URL, answers, prints requests and events, and exits on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'posthog-emulator-'));
    const flagsFile = join(dir, 'flags.json');
    writeFileSync(
      flagsFile,
      JSON.stringify({ flags: [flag('cli-flag')], group_type_mapping: { '0': 'company' } }),
    );
    const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
    const args = ['--flags', flagsFile, '--project-key', 'phc_cli', '--personal-key', 'phx_cli'];
    const proc = spawn(process.execPath, [cli, ...args, '--print-events'], { stdio: 'pipe' });
    child = proc;
    let output = '';
    proc.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    proc.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const waitFor = async (pattern: RegExp) => {
      const deadline = Date.now() + 8000;
      while (!pattern.test(output)) {
        if (Date.now() > deadline) throw new Error(`CLI never printed ${pattern}; got:\n${output}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return pattern.exec(output)!;
    };

    const [, url] = await waitFor(/^PostHog emulator listening on (http:\/\/127\.0\.0\.1:\d+)$/m);
    expect(output.split('\n')[0]).toMatch(/^PostHog emulator listening on /);

    const client = clientFor({ url: url!, projectApiKey: 'phc_cli' });
    client.capture({ distinctId: 'u1', event: 'signed up', properties: { plan: 'pro' } });
    await client.flush();
    await waitFor(/^event signed up distinct_id=u1 \{"plan":"pro"/m);
    await waitFor(/^POST \/batch\/ -> 200 \(1 event\)$/m);

    const definitions = await fetch(`${url}/flags/definitions?token=phc_cli&send_cohorts`, {
      headers: { authorization: 'Bearer phx_cli' },
    });
    expect(definitions.status).toBe(200);
    const body = await definitions.json();
    expect(body.flags.map((f: { key: string }) => f.key)).toEqual(['cli-flag']);
    expect(body.group_type_mapping).toEqual({ '0': 'company' });

    const exited = new Promise<number | null>((resolve) => proc.on('exit', resolve));
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});

describe('startEmulatorUnlessConfigured', () => {
  it('starts one and points POSTHOG_* at it when no key is set; leaves a configured env alone', async () => {
    const lines: string[] = [];
    const env: Record<string, string | undefined> = {};
    const emulator = await startEmulatorUnlessConfigured({ log: (l) => lines.push(l) }, env);
    try {
      expect(emulator).toBeDefined();
      expect(env).toEqual({
        POSTHOG_HOST: emulator?.url,
        POSTHOG_PROJECT_API_KEY: 'phc_test_emulator',
        POSTHOG_PERSONAL_API_KEY: 'phx_test_emulator',
      });
      expect(lines).toEqual([
        `PostHog emulator at ${emulator?.url} (no POSTHOG_PROJECT_API_KEY set)`,
      ]);
    } finally {
      await emulator?.close();
    }
    const configured = { POSTHOG_API_KEY: 'phc_real' };
    expect(await startEmulatorUnlessConfigured({}, configured)).toBeUndefined();
    expect(configured).toEqual({ POSTHOG_API_KEY: 'phc_real' });
  });
});
