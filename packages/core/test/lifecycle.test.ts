import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const child = fileURLToPath(new URL('./fixtures/shutdown-child.ts', import.meta.url));
const script = fileURLToPath(new URL('./fixtures/forgot-shutdown-child.ts', import.meta.url));
let emulator: PostHogEmulator;

beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(() => emulator.close());
beforeEach(() => emulator.reset());

async function stopWith(signal: NodeJS.Signals, mode = '') {
  const proc = spawn(process.execPath, [child, emulator.url, emulator.projectApiKey, mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [chunk] = (await once(proc.stdout, 'data')) as [Buffer];
  expect(chunk.toString()).toContain('ready');
  expect(emulator.events).toHaveLength(0);
  proc.kill(signal);
  const [code, received] = (await once(proc, 'exit')) as [number | null, NodeJS.Signals | null];
  return { code, signal: received };
}

describe('installShutdownHooks', () => {
  it('SIGTERM with 1,000 events queued: all arrive, then the process ends as SIGTERM would', async () => {
    const exit = await stopWith('SIGTERM');
    expect(emulator.events.filter((e) => e.event === 'queued')).toHaveLength(1000);
    expect(exit.signal).toBe('SIGTERM');
  });

  it('SIGINT the same', async () => {
    const exit = await stopWith('SIGINT');
    expect(emulator.events.filter((e) => e.event === 'queued')).toHaveLength(1000);
    expect(exit.signal).toBe('SIGINT');
  });

  it("with the app's own listener, the app decides how to exit and the events still arrive", async () => {
    const exit = await stopWith('SIGTERM', 'own-listener');
    expect(emulator.events.filter((e) => e.event === 'queued')).toHaveLength(1000);
    expect(exit).toEqual({ code: 0, signal: null });
  });
});

describe('a script that forgets shutdown()', () => {
  it.each([
    ['without a personal key', ''],
    ['with a personal key (flag definitions polled)', 'phx_test_emulator'],
  ])('%s: every event is sent and the process ends by itself', async (_name, personal) => {
    const started = Date.now();
    const proc = spawn(
      process.execPath,
      [script, emulator.url, emulator.projectApiKey, personal ? emulator.personalApiKey : ''],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    const [code] = (await once(proc, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(emulator.events.filter((e) => e.event === 'scripted')).toHaveLength(250);
    // posthog-node's own poller timer kept such a process up forever.
    expect(Date.now() - started).toBeLessThan(15_000);
    if (personal) expect(emulator.definitionsFetchCount).toBeGreaterThanOrEqual(1);
  });
});
