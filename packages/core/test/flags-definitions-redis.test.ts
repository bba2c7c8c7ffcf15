import { createClient } from '@keyv/redis';
import { afterAll, inject } from 'vitest';
import { flagDefinitionsSuite } from './flag-definitions-suite.ts';

const redisUrl = inject('redisUrl');
const raw = redisUrl ? createClient({ url: redisUrl }) : undefined;
afterAll(async () => {
  if (raw?.isOpen) await raw.close();
});

flagDefinitionsSuite({
  name: 'Redis (@keyv/redis, redisUrl)',
  skip: redisUrl ? undefined : inject('redisSkipReason'),
  options: () => ({ redisUrl }),
  async writeRaw(key, text) {
    if (!raw) return;
    if (!raw.isOpen) await raw.connect();
    await raw.set(key, text);
  },
});
