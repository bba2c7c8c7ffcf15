import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { inject, it } from 'vitest';
import type {} from '../../../test/redis-global-setup.ts';

const exec = promisify(execFile);
const redisUrl = inject('redisUrl');
const cwd = fileURLToPath(new URL('..', import.meta.url));
const env = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('POSTHOG_')),
);

async function demo(store: string) {
  const { stdout } = await exec(process.execPath, ['src/demo.ts', store, '3'], {
    cwd,
    env: { ...env, REDIS_URL: redisUrl },
    timeout: 30_000,
  });
  const lines = stdout.split('\n').filter((l) => l.trim().startsWith('{'));
  const runs = lines.map((l) => JSON.parse(l) as { answers: Record<string, boolean> });
  const fetches = Number(/asked for flag definitions (\d+) time/.exec(stdout)?.[1]);
  return { runs, fetches };
}

it('three processes share flag definitions through a SQLite Keyv store', {
  concurrent: true,
}, async ({ expect }) => {
  const { runs, fetches } = await demo('sqlite');
  expect(runs).toHaveLength(3);
  // Every process gives every user the same answer.
  expect(new Set(runs.map((r) => JSON.stringify(r.answers))).size).toBe(1);
  // About 6 polls in 3 s for one process; three alone would make about 18.
  expect(fetches).toBeLessThanOrEqual(10);
});

it.skipIf(!redisUrl)(
  'three processes share flag definitions through Redis (@keyv/redis)',
  { concurrent: true },
  async ({ expect }) => {
    const { runs, fetches } = await demo('redis');
    expect(runs).toHaveLength(3);
    expect(new Set(runs.map((r) => JSON.stringify(r.answers))).size).toBe(1);
    expect(fetches).toBeLessThanOrEqual(10);
  },
);
