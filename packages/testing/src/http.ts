import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';

const gunzipAsync = promisify(gunzip);

/** PostHog's ingestion refuses bodies over about 20 MB; so does the emulator (before and after gunzip). */
export const MAX_BODY_BYTES = 20 * 1024 * 1024;

/** A request body: bytes, or too large to keep. */
export type RawBody = { bytes: Buffer; tooLarge: false } | { bytes: undefined; tooLarge: true };

export function readBody(req: IncomingMessage): Promise<RawBody> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // Keep draining past the limit so the client gets the 413 instead of a reset.
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    const done = () =>
      resolve(
        size > MAX_BODY_BYTES
          ? { bytes: undefined, tooLarge: true }
          : { bytes: Buffer.concat(chunks), tooLarge: false },
      );
    req.on('end', done);
    // An aborted upload answers nobody; resolving lets the handler finish its bookkeeping.
    req.on('error', done);
  });
}

/** A parsed JSON body, or why it could not be parsed. */
export type ParsedBody = { ok: true; value: unknown } | { ok: false; error: string };

/** Gunzips when the header or the magic bytes say gzip, then parses JSON. */
export async function parseJsonBody(
  bytes: Buffer,
  contentEncoding: string | undefined,
  compressionParam: string | null,
): Promise<ParsedBody> {
  let data = bytes;
  const gzipped =
    /gzip/i.test(contentEncoding ?? '') ||
    compressionParam === 'gzip' ||
    compressionParam === 'gzip-js' ||
    (bytes[0] === 0x1f && bytes[1] === 0x8b);
  if (gzipped) {
    try {
      data = await gunzipAsync(bytes, { maxOutputLength: MAX_BODY_BYTES });
    } catch (error) {
      return { ok: false, error: `body is not valid gzip (${(error as Error).message})` };
    }
  }
  const text = data.toString('utf8');
  if (text.trim() === '') return { ok: false, error: 'body is empty, expected JSON' };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, error: `body is not JSON (${(error as Error).message})` };
  }
}

/** Answers with JSON (objects), text (strings) or nothing (undefined); ignores a gone client. */
export function send(
  res: ServerResponse,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.destroyed || res.headersSent) return;
  let payload: string | undefined;
  const head: Record<string, string> = {};
  if (typeof body === 'string') {
    payload = body;
    head['content-type'] = 'text/plain; charset=utf-8';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    head['content-type'] = 'application/json';
  }
  if (payload !== undefined) head['content-length'] = String(Buffer.byteLength(payload));
  res.writeHead(status, { ...head, ...headers });
  res.end(payload);
}

/** Lower-cased headers as strings, with the secret part of `authorization` masked. */
export function recordHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const auth = headers.authorization;
  if (auth !== undefined) {
    const match = /^(\S+)\s+(.*)$/.exec(auth);
    // The key's type prefix (phx_, phs_) is enough to tell keys apart in a failing test.
    headers.authorization = match
      ? `${match[1]} ${(match[2] ?? '').slice(0, 4)}***`
      : `${auth.slice(0, 4)}***`;
  }
  return headers;
}
