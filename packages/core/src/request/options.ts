import { isRequestOption } from '../settings.ts';
import type { MiddlewareOptions, RequestOptions } from './tracker.ts';

/**
 * The per-request part of a middleware's options (request settings and hooks), without
 * `kit` and the kit's settings: for an adapter whose kit can come from elsewhere (a DI
 * container's override), `new RequestTracker({ ...requestOptions(options), kit })`.
 */
export function requestOptions<TRaw>(options: MiddlewareOptions<TRaw>): RequestOptions<TRaw> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) if (isRequestOption(key)) out[key] = value;
  return out as RequestOptions<TRaw>;
}
