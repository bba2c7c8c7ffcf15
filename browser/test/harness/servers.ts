// Loopback servers for one test: the page's origin (page, posthog-js, /ingest, and
// the same-origin API) and a second origin that serves only the API.
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { frontend } from './frontend.ts';

export interface Served {
  port: number;
  close(): Promise<void>;
}

export async function serve(listener: RequestListener): Promise<Served> {
  const server: Server = createServer(listener);
  // posthog-js and Chromium keep connections alive; close must not wait for them.
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The page's origin: the frontend's paths, everything else to `api` (or 404). */
export function pageServer(emulatorUrl: string, api?: RequestListener): Promise<Served> {
  const page = frontend(emulatorUrl);
  return serve((req, res) => {
    if (page(req, res)) return;
    if (api) {
      api(req, res);
      return;
    }
    res.writeHead(404);
    res.end();
  });
}
