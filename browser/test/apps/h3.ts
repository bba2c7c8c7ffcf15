import { posthog } from '@posthog-kit/h3';
import { H3, handleCors } from 'h3';
import { toNodeHandler } from 'h3/node';
import { type BrowserBridge, hitProperties, POSTHOG_HEADERS } from './types.ts';

export const h3Bridge: BrowserBridge = {
  name: 'h3',
  async api({ kit, cors: corsSetup, readPostHogCookie }) {
    const app = new H3({ silent: true });
    // The docs' h3 CORS snippet: h3's own handleCors (it answers the preflight).
    if (corsSetup) {
      app.use((event) => {
        const preflight = handleCors(event, {
          origin: [corsSetup.origin],
          credentials: corsSetup.credentials,
          allowHeaders: ['Content-Type', ...POSTHOG_HEADERS],
          methods: ['GET', 'POST'],
        });
        if (preflight) return preflight;
      });
    }
    app.use(posthog({ kit, readPostHogCookie }));
    app.get('/api/hit', (event) => {
      const query = new URL(event.req.url).searchParams;
      event.context.posthog.capture('api hit', { properties: hitProperties(query) });
      return { ok: true };
    });
    return toNodeHandler(app);
  },
};
