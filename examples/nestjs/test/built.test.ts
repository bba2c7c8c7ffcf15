// The app as it ships: compiled by tsc (experimentalDecorators, emitDecoratorMetadata) to
// dist/, started as `pnpm start` does, stopped by SIGTERM as a deploy stops it.
import { execFileSync, spawn } from 'node:child_process';
import { get, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { startEmulator } from '@posthog-kit/testing';
import { expect, it } from 'vitest';

const dir = fileURLToPath(new URL('..', import.meta.url));
const tsc = fileURLToPath(new URL('../../../node_modules/typescript/bin/tsc', import.meta.url));

/** A request on a connection of its own: no keep-alive socket holds the server's close. */
function send(url: string, method: string, body?: string) {
  return new Promise<number>((resolve, reject) => {
    const headers = { 'x-user-id': 'shipped', 'content-type': 'application/json' };
    const req = (method === 'GET' ? get : request)(
      url,
      { method, headers, agent: false },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

it('tsc builds it; `node dist/main.js` serves, and sends what it captured at SIGTERM', async () => {
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: dir });
  const emulator = await startEmulator();
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('POSTHOG_') && !k.startsWith('VITEST')) env[k] = v;
  }
  const child = spawn(process.execPath, ['--import', './dist/dev.js', 'dist/main.js'], {
    cwd: dir,
    env: {
      ...env,
      PORT: '0',
      POSTHOG_PROJECT_API_KEY: emulator.projectApiKey,
      POSTHOG_HOST: emulator.url,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<string | null>((resolve) => child.once('exit', (_c, s) => resolve(s)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const found = /NestJS app on (\S+):/.exec(output)?.[1];
        if (found) resolve(found.replace('[::1]', '127.0.0.1'));
      });
      void exited.then(() => reject(new Error(`the app ended:\n${output}`)));
    });
    expect(await send(`${url}/signup`, 'POST', '{"plan":"team"}')).toBe(201);
    expect(await send(`${url}/reports/7`, 'GET')).toBe(500);
    child.kill('SIGTERM');
    expect(await exited).toBe('SIGTERM');
    const seen = emulator.events.map((e) => [e.event, e.distinctId]);
    expect(seen).toEqual(
      expect.arrayContaining([
        ['signed_up', 'shipped'],
        ['$exception', 'shipped'],
      ]),
    );
  } finally {
    child.kill('SIGKILL');
    await emulator.close();
  }
});
