import type { RequestInfo } from '../types.ts';

/** What core reads of Node's `IncomingMessage` (no `node:` import: a structural type). */
export interface NodeIncomingMessage {
  readonly method?: string | undefined;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/**
 * The request layer of Node's request model, shared by Express, Koa and Fastify: method
 * and headers from the `IncomingMessage`, the path and URL from the request target the
 * app received. An adapter says where the target, scheme, host and client IP are.
 */
export abstract class NodeRequestInfo<TRaw> implements RequestInfo<TRaw> {
  readonly raw: TRaw;
  readonly #message: NodeIncomingMessage;

  constructor(raw: TRaw, message: NodeIncomingMessage) {
    this.raw = raw;
    this.#message = message;
  }

  /** The request target as received, before rewrites and mount points (`/a/b?x=1`). */
  protected abstract get target(): string;
  /** `http` or `https`, as the framework's proxy settings see it. */
  protected abstract get protocol(): string;
  /** The Host, as the framework's proxy settings see it. */
  protected abstract get host(): string | undefined;
  /** The client IP from the framework's proxy-aware getter. */
  abstract get ip(): string | undefined;

  get method(): string {
    return this.#message.method ?? 'GET';
  }

  get url(): string {
    return `${this.protocol}://${this.host || 'localhost'}${this.target}`;
  }

  get path(): string {
    const target = this.target;
    const query = target.indexOf('?');
    return query < 0 ? target : target.slice(0, query);
  }

  header(name: string): string | undefined {
    const value = this.#message.headers[name];
    return Array.isArray(value) ? value[0] : value;
  }
}
