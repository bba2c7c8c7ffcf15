// SIGTERM to a Nest app with enableShutdownHooks(), the kit from the environment: core's
// signal hook and Nest's lifecycle both act, the kit shuts down once, and an event captured
// by a request still running at the signal is sent too. A child process runs the built package.
import { spawn } from 'node:child_process';
import { get } from 'node:http';
import { fileURLToPath } from 'node:url';
import { type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { platforms } from './helpers.ts';

let emulator: PostHogEmulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(() => emulator.close());

const app = fileURLToPath(new URL('./fixtures/shutdown-app.ts', import.meta.url));

/** A GET on a connection of its own, closed after it: no keep-alive socket holds the server's close. */
const request = (url: string) =>
  new Promise<number>((resolve, reject) => {
    get(url, { agent: false, headers: { 'x-posthog-distinct-id': 'deploy' } }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    }).once('error', reject);
  });

describe.each(platforms)('Nest on $name', (platform) => {
  it('SIGTERM: the request in flight finishes, every event arrives, the process ends by the signal', async () => {
    emulator.reset();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && !k.startsWith('POSTHOG_') && !k.startsWith('VITEST')) env[k] = v;
    }
    const child = spawn(process.execPath, [app, platform.name.toLowerCase()], {
      env: { ...env, POSTHOG_PROJECT_API_KEY: emulator.projectApiKey, POSTHOG_HOST: emulator.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const line = /\{"url":"([^"]+)"\}/.exec(output);
        if (line) resolve(line[1] as string);
      });
      void exited.then(() => reject(new Error(`the app ended early:\n${output}`)));
    });
    expect(await request(`${url}/fast`)).toBe(200);
    const slow = request(`${url}/slow`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    child.kill('SIGTERM');
    expect(await slow).toBe(200);
    expect(await exited).toEqual({ code: null, signal: 'SIGTERM' });
    expect(emulator.events.map((e) => [e.event, e.distinctId]).sort()).toEqual([
      ['after_signal', 'deploy'],
      ['before_signal', 'deploy'],
    ]);
    // One shutdown: posthog-node warns when shutdown() is called while one is running.
    expect(output).not.toMatch(/already shutting down|\[posthog-kit\]|Error/);
  });
});
