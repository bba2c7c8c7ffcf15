import { posthog } from '@posthog-kit/koa';
import Koa from 'koa';
import { type BrowserBridge, type CorsSetup, hitProperties, POSTHOG_HEADERS } from './types.ts';

/** The docs' Koa CORS snippet: plain headers, no package. */
function cors({ origin, credentials }: CorsSetup): Koa.Middleware {
  return async (ctx, next) => {
    ctx.vary('Origin');
    if (ctx.get('Origin') === origin) {
      ctx.set('Access-Control-Allow-Origin', origin);
      if (credentials) ctx.set('Access-Control-Allow-Credentials', 'true');
      ctx.set('Access-Control-Allow-Headers', ['Content-Type', ...POSTHOG_HEADERS].join(', '));
    }
    if (ctx.method === 'OPTIONS') {
      ctx.status = 204;
      return;
    }
    await next();
  };
}

export const koaBridge: BrowserBridge = {
  name: 'Koa',
  async api({ kit, cors: corsSetup, readPostHogCookie }) {
    const app = new Koa();
    app.silent = true;
    if (corsSetup) app.use(cors(corsSetup));
    app.use(posthog({ kit, readPostHogCookie }));
    app.use(async (ctx, next) => {
      if (ctx.method !== 'GET' || ctx.path !== '/api/hit') return next();
      ctx.state.posthog.capture('api hit', {
        properties: hitProperties(new URLSearchParams(ctx.querystring)),
      });
      ctx.body = { ok: true };
    });
    return app.callback();
  },
};
