// What the code-variables tests share: one emulator, kits with code variables on (each test's
// shut down after it: the debugger is one per process and serves every live kit), and an
// Express app with the kit's middleware over real HTTP.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { posthogErrorHandler, posthog as posthogMiddleware } from '@posthog-kit/express';
import { type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import express, { type RequestHandler } from 'express';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { configureCodeVariables } from '../src/code-variables/index.ts';
import type { PostHogKit, PostHogKitOptions } from '../src/index.ts';
import { kitFor } from './helpers.ts';

export interface CodeVariablesHarness {
  /** The emulator (started before the file's tests). */
  readonly emulator: PostHogEmulator;
  /** A kit with code variables on (plus `options`), ready. */
  makeKit(options?: PostHogKitOptions): Promise<PostHogKit>;
  /** An Express app with the kit's middleware around `routes`; its URL. */
  serve(kit: PostHogKit, routes: Record<string, RequestHandler>): Promise<string>;
}

/** Registers the file's hooks; call once at the top of a test file. */
export function codeVariablesHarness(): CodeVariablesHarness {
  let emulator: PostHogEmulator | undefined;
  const kits: PostHogKit[] = [];
  const servers: Server[] = [];

  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterEach(async () => {
    await Promise.all(kits.splice(0).map((k) => k.shutdown(1_000)));
    emulator?.reset();
    configureCodeVariables();
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await emulator?.close();
  });

  const started = (): PostHogEmulator => {
    if (!emulator) throw new Error('the emulator starts in beforeAll');
    return emulator;
  };

  return {
    get emulator() {
      return started();
    },
    async makeKit(options = {}) {
      const kit = kitFor(started(), { captureExceptionCodeVariables: true, ...options });
      kits.push(kit);
      await kit.ready;
      return kit;
    },
    async serve(kit, routes) {
      const app = express();
      app.set('env', 'test'); // no error log from Express's final handler
      // The adapter's types are built against core's dist, this kit comes from the sources.
      app.use(posthogMiddleware({ kit: kit as never }));
      for (const [path, handler] of Object.entries(routes)) app.get(path, handler);
      app.use(posthogErrorHandler());
      const server: Server = await new Promise((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      servers.push(server);
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
  };
}
