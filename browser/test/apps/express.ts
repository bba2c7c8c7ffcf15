import { posthog } from '@posthog-kit/express';
import express from 'express';
import { type BrowserBridge, type CorsSetup, hitProperties, POSTHOG_HEADERS } from './types.ts';

/** The docs' Express CORS snippet: plain headers, no package. */
function cors({ origin, credentials }: CorsSetup): express.RequestHandler {
  return (req, res, next) => {
    res.vary('Origin');
    if (req.get('origin') === origin) {
      res.set('Access-Control-Allow-Origin', origin);
      if (credentials) res.set('Access-Control-Allow-Credentials', 'true');
      res.set('Access-Control-Allow-Headers', ['Content-Type', ...POSTHOG_HEADERS].join(', '));
    }
    if (req.method === 'OPTIONS') {
      res.sendStatus(204);
      return;
    }
    next();
  };
}

export const expressBridge: BrowserBridge = {
  name: 'Express',
  async api({ kit, cors: corsSetup, readPostHogCookie }) {
    const app = express();
    if (corsSetup) app.use(cors(corsSetup));
    app.use(posthog({ kit, readPostHogCookie }));
    app.get('/api/hit', (req, res) => {
      const query = new URLSearchParams(req.url.split('?')[1] ?? '');
      req.posthog.capture('api hit', { properties: hitProperties(query) });
      res.json({ ok: true });
    });
    return app;
  },
};
