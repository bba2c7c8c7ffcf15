// The web page's side: the HTML page, posthog-js from its npm package, and the
// `/ingest` reverse proxy to the emulator (PostHog's recommended setup), so
// posthog-js's own requests are same-origin and its answers readable.
import { readFileSync } from 'node:fs';
import { type IncomingMessage, request, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
/** The full browser bundle: every extension (tracing headers included) built in, nothing fetched later. */
const BUNDLE_PATH = require.resolve('posthog-js/dist/array.full.js');
const BUNDLE = readFileSync(BUNDLE_PATH);
export const POSTHOG_JS_VERSION: string = (
  JSON.parse(readFileSync(require.resolve('posthog-js/package.json'), 'utf8')) as {
    version: string;
  }
).version;

// Helpers the tests call with page.evaluate: the app's own requests, by fetch or XHR.
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>posthog-kit browser test</title>
<script src="/static/array.full.js"></script>
<script>
window.callApi = function (url, via, credentials) {
  if (via === 'xhr') {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open('GET', url);
      xhr.withCredentials = credentials === 'include';
      xhr.onload = function () { resolve({ status: xhr.status, body: xhr.responseText }); };
      xhr.onerror = function () { resolve({ status: 0, body: 'network error' }); };
      xhr.send();
    });
  }
  return fetch(url, { credentials: credentials })
    .then(function (r) { return r.text().then(function (body) { return { status: r.status, body: body }; }); })
    .catch(function (e) { return { status: 0, body: String(e) }; });
};
</script>
</head><body><h1>posthog-kit</h1></body></html>`;

/**
 * The node listener of the page's paths: `/` (the page), `/static/array.full.js`
 * (posthog-js), `/ingest/*` (proxied to the emulator). Returns false for any other path.
 */
export function frontend(emulatorUrl: string) {
  const upstream = new URL(emulatorUrl);
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/' || path === '/index.html') {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
      });
      res.end(PAGE);
      return true;
    }
    if (path === '/static/array.full.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      res.end(BUNDLE);
      return true;
    }
    if (path === '/favicon.ico') {
      res.writeHead(204);
      res.end();
      return true;
    }
    if (path.startsWith('/ingest/')) {
      const headers = { ...req.headers, host: upstream.host };
      // The emulator has no use for the page's cookies; a reverse proxy in production drops them too.
      delete headers.cookie;
      const out = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: (req.url ?? '/').slice('/ingest'.length),
          headers,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      out.on('error', () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      req.pipe(out);
      return true;
    }
    return false;
  };
}
