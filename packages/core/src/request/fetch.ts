import type { RequestInfo } from '../types.ts';

/**
 * The request layer of the Fetch request model, shared by Hono and h3: method, URL, path
 * and headers from a Web `Request`. An adapter adds the client IP, the user and
 * `waitUntil` where its framework has them.
 */
export class FetchRequestInfo<TRaw> implements RequestInfo<TRaw> {
  readonly raw: TRaw;
  readonly #request: Request;

  constructor(raw: TRaw, request: Request) {
    this.raw = raw;
    this.#request = request;
  }

  get method(): string {
    return this.#request.method;
  }

  get url(): string {
    return this.#request.url;
  }

  get path(): string {
    return new URL(this.#request.url).pathname;
  }

  get ip(): string | undefined {
    return undefined;
  }

  header(name: string): string | undefined {
    return this.#request.headers.get(name) ?? undefined;
  }
}
