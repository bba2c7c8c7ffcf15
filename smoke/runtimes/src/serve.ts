// Runs the smoke app (SMOKE_FRAMEWORK=hono|h3) on Bun or Deno, the way each runtime serves
// it, on a free loopback port; prints one JSON line with its URL. Settings come from POSTHOG_*.
import { configure } from '@posthog-kit/core';
import { serve as serveH3 } from 'h3';
import { createH3App } from './h3-app.ts';
import { createHonoApp } from './hono-app.ts';

type Fetch = (request: Request, env?: unknown) => Response | Promise<Response>;
interface BunLike {
  version: string;
  serve(options: { port: number; hostname: string; fetch: Fetch }): { url: URL };
}
interface DenoLike {
  version: { deno: string };
  env: { get(name: string): string | undefined };
  serve(
    options: { port: number; hostname: string; onListen(addr: { port: number }): void },
    handler: Fetch,
  ): unknown;
}
const { Bun, Deno } = globalThis as { Bun?: BunLike; Deno?: DenoLike };
const runtime = Bun ? `bun ${Bun.version}` : `deno ${Deno?.version.deno}`;
const framework = Bun ? process.env.SMOKE_FRAMEWORK : Deno?.env.get('SMOKE_FRAMEWORK');

// One event per batch, so the test sees each as it is captured.
const kit = configure({ clientOptions: { flushAt: 1 } });
let url: string;
if (framework === 'hono') {
  const { getConnInfo } = Bun ? await import('hono/bun') : await import('hono/deno');
  const app = createHonoApp(runtime, { kit, getConnInfo });
  url = Bun
    ? Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: app.fetch }).url.href
    : await new Promise<string>((resolve) => {
        Deno?.serve(
          {
            port: 0,
            hostname: '127.0.0.1',
            onListen: ({ port }) => resolve(`http://127.0.0.1:${port}/`),
          },
          app.fetch,
        );
      });
} else {
  const server = serveH3(createH3App(runtime, { kit }), {
    port: 0,
    hostname: '127.0.0.1',
    silent: true,
  });
  await server.ready();
  url = server.url as string;
}
console.log(JSON.stringify({ url: url.replace(/\/$/, ''), runtime, framework }));
