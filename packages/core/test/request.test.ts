import { setTimeout as sleep } from 'node:timers/promises';
import { type PostHogEmulator, startEmulator } from '@posthog-kit/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  capture,
  configure,
  getContextDistinctId,
  type MiddlewareOptions,
  maskUrl,
  type PostHogHandle,
  type PostHogKit,
  type RequestInfo,
  RequestTracker,
  resetKit,
  sanitizeHeaderId,
} from '../src/index.ts';
import { kitFor, memoryLogger } from './helpers.ts';

/** What a framework request looks like to the neutral driver below. */
interface FakeRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  ip?: string;
  user?: { id?: string | number; email?: string } | null;
}

/**
 * A minimal adapter over a plain object: translate, run in scope, report error and
 * status. The real adapters do the same against their framework.
 */
async function serve(
  tracker: RequestTracker<FakeRequest>,
  req: FakeRequest,
  handler: (handle: PostHogHandle) => unknown,
  extra: Partial<Pick<RequestInfo<FakeRequest>, 'waitUntil'>> = {},
): Promise<{ status: number; body: unknown; scope: PostHogHandle }> {
  const path = req.path ?? '/';
  const headers = Object.fromEntries(
    Object.entries(req.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
  );
  const info: RequestInfo<FakeRequest> = {
    method: req.method ?? 'GET',
    url: `http://app.test${path}`,
    path: path.split('?')[0] ?? path,
    ip: req.ip,
    raw: req,
    header: (name) => headers[name],
    user: () => req.user,
    ...extra,
  };
  const scope = tracker.start(info);
  const slot = scope.posthog;
  try {
    const body = await tracker.run(scope, () => handler(slot));
    tracker.end(scope, 200, '/things/:id');
    return { status: 200, body, scope: slot };
  } catch (error) {
    const status = (error as { status?: number } | undefined)?.status ?? 500;
    tracker.captureError(scope, error);
    tracker.end(scope, status, '/things/:id');
    return { status, body: String(error), scope: slot };
  }
}

let emulator: PostHogEmulator;
let kit: PostHogKit;
const tracker = (options: Omit<MiddlewareOptions<FakeRequest>, 'kit'> = {}) =>
  new RequestTracker<FakeRequest>({ kit, ...options });

const flushed = async () => {
  await kit.flush();
  return emulator.events;
};

beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator.close();
});
beforeEach(async () => {
  emulator.reset();
  kit = kitFor(emulator);
  return () => kit.shutdown(1_000);
});

describe('tracing headers', () => {
  it('are sanitised: control characters removed, trimmed, capped at 1000, blank dropped', () => {
    expect(sanitizeHeaderId('  user\u0000-\u001f1\u007f\u0085 ')).toBe('user-1');
    expect(sanitizeHeaderId('x'.repeat(5000))).toHaveLength(1000);
    expect(sanitizeHeaderId('   ')).toBeUndefined();
    expect(sanitizeHeaderId('\u0001\u0002')).toBeUndefined();
    expect(sanitizeHeaderId(undefined)).toBeUndefined();
  });

  it('give the request its distinct and session ids', async () => {
    await serve(
      tracker(),
      { headers: { 'X-POSTHOG-DISTINCT-ID': ' user-42\n', 'X-POSTHOG-SESSION-ID': 'sess-1' } },
      () => capture('clicked'),
    );
    const [event] = await flushed();
    expect(event?.distinctId).toBe('user-42');
    expect(event?.properties.$session_id).toBe('sess-1');
  });

  it('a 5,000-character header is cut to 1,000; a blank one is ignored', async () => {
    await serve(tracker(), { headers: { 'x-posthog-distinct-id': 'a'.repeat(5000) } }, () =>
      capture('long'),
    );
    await serve(tracker(), { headers: { 'x-posthog-distinct-id': '  \t ' } }, () =>
      capture('blank'),
    );
    const events = await flushed();
    expect(events.find((e) => e.event === 'long')?.distinctId).toBe('a'.repeat(1000));
    const blank = events.find((e) => e.event === 'blank');
    expect(blank?.properties.$process_person_profile).toBe(false);
  });
});

describe('$current_url', () => {
  it('masks credentials in query parameters and anything shaped like a PostHog key', () => {
    expect(
      maskUrl(
        'https://a.io/cb?code=abc&state=xyz&access_token=t1&api_key=k&plain=phc_abcdefgh#frag',
      ),
    ).toBe(
      'https://a.io/cb?code=[redacted]&state=xyz&access_token=[redacted]&api_key=[redacted]&plain=[redacted]#frag',
    );
    expect(maskUrl('https://a.io/x?page=2&q=shoes')).toBe('https://a.io/x?page=2&q=shoes');
    expect(maskUrl('https://a.io/x')).toBe('https://a.io/x');
    expect(maskUrl('https://a.io/x?Password=hunter2&flag')).toBe(
      'https://a.io/x?Password=[redacted]&flag',
    );
  });
});

describe('$current_url masking, beyond query tokens', () => {
  it.each([
    ['pass', 'https://a.io/l?pass=hunter2&x=1', 'https://a.io/l?pass=[redacted]&x=1'],
    ['passphrase', 'https://a.io/l?passphrase=a%20b', 'https://a.io/l?passphrase=[redacted]'],
    ['passcode', 'https://a.io/l?passcode=1234', 'https://a.io/l?passcode=[redacted]'],
    ['session', 'https://a.io/l?session=s3cr3t', 'https://a.io/l?session=[redacted]'],
    ['sid', 'https://a.io/l?sid=abc&side=left', 'https://a.io/l?sid=[redacted]&side=left'],
    ['otp', 'https://a.io/l?otp=123456', 'https://a.io/l?otp=[redacted]'],
    ['pin', 'https://a.io/l?pin=0000&spinner=1', 'https://a.io/l?pin=[redacted]&spinner=1'],
    ['accessKey', 'https://a.io/l?accessKey=AK1', 'https://a.io/l?accessKey=[redacted]'],
    [
      'AWSAccessKeyId',
      'https://s3.io/o?AWSAccessKeyId=AKIA1',
      'https://s3.io/o?AWSAccessKeyId=[redacted]',
    ],
    [
      'a PostHog key in the path',
      'https://a.io/keys/phc_abcdef123456/x',
      'https://a.io/keys/[redacted]/x',
    ],
    [
      'credentials from the Host header',
      'http://admin:pw@app.test/x',
      'http://[redacted]@app.test/x',
    ],
    [
      'an absolute-form request target',
      'http://app.test/http://user:pw@evil.test/x',
      'http://app.test/http://[redacted]@evil.test/x',
    ],
  ])('%s', (_name, url, masked) => {
    expect(maskUrl(url)).toBe(masked);
  });

  it('$current_url and $user_agent are cut at 1,000 characters, as ids are', async () => {
    await serve(
      tracker(),
      { path: `/${'p'.repeat(15_000)}`, headers: { 'user-agent': 'u'.repeat(15_000) } },
      () => capture('long_tags', { distinctId: 'u' }),
    );
    const [event] = await flushed();
    expect(String(event?.properties.$current_url)).toHaveLength(1_000);
    expect(String(event?.properties.$user_agent)).toHaveLength(1_000);
    expect(event?.properties.$raw_user_agent).toBe(event?.properties.$user_agent);
  });
});

describe('user resolver', () => {
  it('the default user gives the id and the email tag; the header wins over it', async () => {
    await serve(tracker(), { user: { id: 7, email: 'ada@example.com' } }, () => capture('a'));
    await serve(
      tracker(),
      { user: { id: 7 }, headers: { 'x-posthog-distinct-id': 'from-header' } },
      () => capture('b'),
    );
    const events = await flushed();
    expect(events.find((e) => e.event === 'a')).toMatchObject({
      distinctId: '7',
      properties: { email: 'ada@example.com' },
    });
    expect(events.find((e) => e.event === 'b')?.distinctId).toBe('from-header');
  });

  it('preferAuthenticatedUser puts the user before the header', async () => {
    await serve(
      tracker({ preferAuthenticatedUser: true }),
      { user: { id: 'real' }, headers: { 'x-posthog-distinct-id': 'spoofed' } },
      () => capture('c'),
    );
    expect((await flushed())[0]?.distinctId).toBe('real');
  });

  it('a custom resolveUser replaces the default, and is read when the event is captured', async () => {
    const req: FakeRequest = { user: null };
    await serve(
      tracker({
        resolveUser: (info) => (info.raw.user ? { id: `acct-${info.raw.user.id}` } : null),
      }),
      req,
      async () => {
        capture('before-login');
        req.user = { id: 5 }; // auth middleware ran after ours
        capture('after-login');
      },
    );
    const events = await flushed();
    expect(events.find((e) => e.event === 'before-login')?.properties.$process_person_profile).toBe(
      false,
    );
    expect(events.find((e) => e.event === 'after-login')?.distinctId).toBe('acct-5');
  });
});

describe('tags', () => {
  it('built-in tags, extraTags after them, tagMap last; explicit properties win', async () => {
    await serve(
      tracker({
        extraTags: (info) => ({ tenant: info.header('x-tenant'), $request_method: 'OVERRIDDEN' }),
        tagMap: (tags) => {
          const { $ip: _ip, ...rest } = tags;
          return { ...rest, mapped: true };
        },
      }),
      {
        method: 'POST',
        path: '/things/1?x=1',
        ip: '203.0.113.9',
        headers: { 'user-agent': 'curl/8', 'x-tenant': 'acme', 'x-posthog-distinct-id': 'u' },
        user: { email: 'e@x.io' },
      },
      () => capture('tagged', { properties: { tenant: 'explicit' } }),
    );
    const [event] = await flushed();
    expect(event?.properties).toMatchObject({
      $current_url: 'http://app.test/things/1?x=1',
      $request_method: 'OVERRIDDEN',
      $request_path: '/things/1',
      $user_agent: 'curl/8',
      email: 'e@x.io',
      tenant: 'explicit',
      mapped: true,
    });
    expect(event?.properties.$ip).toBeUndefined();
  });

  it('the request slot captures with the request ids without AsyncLocalStorage', async () => {
    const t = tracker();
    const { scope } = await serve(
      t,
      { headers: { 'x-posthog-distinct-id': 'slot-user' } },
      () => undefined,
    );
    // After the request, outside any context: the slot still knows its request.
    expect(getContextDistinctId()).toBeUndefined();
    scope.capture('late', { properties: { x: 1 } });
    scope.tag('added', 'later');
    scope.capture('later');
    const events = await flushed();
    expect(events.find((e) => e.event === 'late')).toMatchObject({
      distinctId: 'slot-user',
      properties: { $request_path: '/', x: 1 },
    });
    expect(events.find((e) => e.event === 'later')?.properties.added).toBe('later');
  });
});

describe('requestFilter', () => {
  it('false: no context, no capture, the handler still runs, the slot is inert', async () => {
    let ran = false;
    const result = await serve(
      tracker({ requestFilter: (info) => info.path !== '/health', captureViews: true }),
      { path: '/health', headers: { 'x-posthog-distinct-id': 'u' } },
      (slot) => {
        ran = true;
        expect(getContextDistinctId()).toBeUndefined();
        slot.capture('from-slot');
        throw Object.assign(new Error('boom'), { status: 500 });
      },
    );
    expect(ran).toBe(true);
    expect(result.status).toBe(500);
    expect(await flushed()).toEqual([]);
  });
});

describe('error policy', () => {
  const throwing = (error: unknown) => () => {
    throw error;
  };

  it('no status or >= 500 is captured once with the ids and the status; 4xx is not', async () => {
    const t = tracker();
    const shared = new Error('shared');
    await serve(
      t,
      { headers: { 'x-posthog-distinct-id': 'u1', 'x-posthog-session-id': 's1' } },
      throwing(new Error('plain')),
    );
    await serve(t, {}, throwing(Object.assign(new Error('bad gateway'), { statusCode: 502 })));
    await serve(t, {}, throwing(Object.assign(new Error('not found'), { status: 404 })));
    await serve(t, {}, throwing(Object.assign(new Error('boom'), { output: { statusCode: 503 } })));
    await serve(t, {}, throwing(Object.assign(new Error('teapot'), { status_code: '418' })));
    await serve(t, {}, throwing(shared));
    await serve(t, {}, throwing(shared));
    const events = (await flushed()).filter((e) => e.event === '$exception');
    const exceptionValue = (e: (typeof events)[number]) =>
      (e.properties.$exception_list as Array<{ value: string }>)[0]?.value;
    expect(events.map(exceptionValue).sort()).toEqual(['bad gateway', 'boom', 'plain', 'shared']);
    const plain = events.find((e) => exceptionValue(e) === 'plain');
    expect(plain).toMatchObject({
      distinctId: 'u1',
      properties: { $session_id: 's1', $response_status_code: 500, $request_path: '/' },
    });
    const boom = events.find((e) => exceptionValue(e) === 'boom');
    expect(boom?.properties.$response_status_code).toBe(503);
  });

  it('shouldCaptureError overrides the default both ways', async () => {
    const t = tracker({ shouldCaptureError: (_e, status) => status === 404 });
    await serve(t, {}, throwing(Object.assign(new Error('missing'), { status: 404 })));
    await serve(t, {}, throwing(new Error('server')));
    const events = (await flushed()).filter((e) => e.event === '$exception');
    expect(events).toHaveLength(1);
    expect(events[0]?.properties.$response_status_code).toBe(404);
  });

  it('thrown non-Error values are captured', async () => {
    const t = tracker();
    await serve(t, {}, throwing('a string'));
    await serve(t, {}, throwing({ message: 'an object', code: 'E1' }));
    await serve(t, {}, throwing(undefined));
    const events = (await flushed()).filter((e) => e.event === '$exception');
    expect(events).toHaveLength(3);
  });

  it('captureExceptions off captures nothing', async () => {
    await serve(tracker({ captureExceptions: false }), {}, throwing(new Error('x')));
    expect(await flushed()).toEqual([]);
  });
});

describe('view capture', () => {
  it('is off by default; on, one event per request with status and route', async () => {
    await serve(tracker(), {}, () => 'ok');
    expect(await flushed()).toEqual([]);
    const t = tracker({ captureViews: true });
    await serve(t, { path: '/things/9', headers: { 'x-posthog-distinct-id': 'v' } }, () => 'ok');
    await serve(t, { path: '/things/10' }, () => {
      throw Object.assign(new Error('nope'), { status: 404 });
    });
    const views = (await flushed()).filter((e) => e.event === '$pageview');
    expect(views).toHaveLength(2);
    expect(views[0]).toMatchObject({
      distinctId: 'v',
      properties: {
        $response_status_code: 200,
        $request_route: '/things/:id',
        $request_path: '/things/9',
      },
    });
    expect(views[1]?.properties.$response_status_code).toBe(404);
  });

  it('viewEventName renames it', async () => {
    await serve(tracker({ captureViews: true, viewEventName: 'api_request' }), {}, () => 'ok');
    expect((await flushed()).map((e) => e.event)).toEqual(['api_request']);
  });
});

describe('serverless', () => {
  it('hands the flush to waitUntil, and the events arrive', async () => {
    const pending: Array<Promise<unknown>> = [];
    await serve(
      tracker(),
      { headers: { 'x-posthog-distinct-id': 'edge' } },
      () => capture('edge-event'),
      {
        waitUntil: (p) => pending.push(p),
      },
    );
    expect(pending).toHaveLength(1);
    await Promise.all(pending);
    expect(emulator.events.map((e) => e.event)).toEqual(['edge-event']);
  });
});

describe('hooks that throw', () => {
  it('the request is served, the error is reported once, the event still goes out', async () => {
    const logger = memoryLogger();
    kit = kitFor(emulator, { logger });
    const t = tracker({
      extraTags: () => {
        throw new Error('extra broke');
      },
      tagMap: () => {
        throw new Error('map broke');
      },
      resolveUser: () => {
        throw new Error('user broke');
      },
      requestFilter: () => {
        throw new Error('filter broke');
      },
      shouldCaptureError: () => {
        throw new Error('policy broke');
      },
    });
    for (let i = 0; i < 3; i++) {
      const r = await serve(t, { headers: { 'x-posthog-distinct-id': 'h' } }, () => {
        capture('still-sent');
        return 'served';
      });
      expect(r.body).toBe('served');
    }
    await serve(t, {}, () => {
      throw new Error('server error');
    });
    const events = await flushed();
    expect(events.filter((e) => e.event === 'still-sent')).toHaveLength(3);
    expect(events[0]?.properties.$request_path).toBe('/');
    expect(events.filter((e) => e.event === '$exception')).toHaveLength(1);
    for (const hook of [
      'extraTags',
      'tagMap',
      'resolveUser',
      'requestFilter',
      'shouldCaptureError',
    ]) {
      expect(logger.lines.filter((l) => l.includes(`${hook} threw`))).toHaveLength(1);
    }
  });
});

describe('an anonymous request', () => {
  it('all its events share one personless id, none makes a person; $context_tags lists the tag keys', async () => {
    const t = tracker({ captureViews: true, extraTags: () => ({ tenant: 'acme' }) });
    await serve(t, { path: '/anon/1' }, () => {
      capture('first');
      capture('second');
      throw new Error('anonymous failure');
    });
    await serve(t, { path: '/anon/2' }, () => capture('other_request'));
    const events = await flushed();
    const first = events.filter((e) => e.properties.$request_path === '/anon/1');
    expect(first.map((e) => e.event).sort()).toEqual([
      '$exception',
      '$pageview',
      'first',
      'second',
    ]);
    expect(new Set(first.map((e) => e.distinctId)).size).toBe(1);
    for (const e of first) expect(e.properties.$process_person_profile).toBe(false);
    const second = events.filter((e) => e.properties.$request_path === '/anon/2');
    expect(second).toHaveLength(2);
    expect(second[0]?.distinctId).not.toBe(first[0]?.distinctId);
    expect(events.find((e) => e.event === 'first')?.properties.$context_tags).toEqual(
      expect.arrayContaining(['$request_path', 'tenant']),
    );
  });
});

describe('hook results that throw when read', () => {
  it('a Proxy whose ownKeys throws, a throwing getter: the request and view capture go on', async () => {
    const logger = memoryLogger();
    kit = kitFor(emulator, { logger });
    const hostile = () =>
      new Proxy(
        {},
        {
          ownKeys() {
            throw new Error('ownKeys exploded');
          },
        },
      );
    const t = tracker({
      captureViews: true,
      extraTags: () => hostile(),
      tagMap: () =>
        ({
          get $current_url(): string {
            throw new Error('lazy getter');
          },
        }) as Record<string, unknown>,
      resolveUser: () =>
        ({
          get id(): string {
            throw new Error('session expired');
          },
        }) as { id?: string },
    });
    for (let i = 0; i < 2; i++) {
      const r = await serve(t, { headers: { 'x-posthog-distinct-id': 'h' } }, () => {
        capture('still_sent');
        return 'served';
      });
      expect(r.status).toBe(200);
      expect(r.body).toBe('served');
    }
    const events = await flushed();
    expect(events.filter((e) => e.event === 'still_sent')).toHaveLength(2);
    expect(events.filter((e) => e.event === '$pageview')).toHaveLength(2);
    for (const hook of ['extraTags', 'tagMap', 'resolveUser']) {
      expect(logger.lines.filter((l) => l.includes(`${hook} threw`))).toHaveLength(1);
    }
  });
});

describe('middleware options', () => {
  it('kit settings next to `kit` are refused with a clear error', () => {
    expect(() => new RequestTracker({ kit, host: 'http://x', apiKey: 'phc_1' })).toThrow(
      '[posthog-kit] posthog(): host, apiKey: set these on createPostHogKit(), not on the middleware, when `kit` is given',
    );
  });

  it('settings without a kit configure the default kit, which the sugar then uses', async () => {
    const t = new RequestTracker<FakeRequest>({
      env: {},
      apiKey: emulator.projectApiKey,
      host: emulator.url,
      clientOptions: { fetchRetryCount: 0 },
    });
    try {
      await serve(t, { headers: { 'x-posthog-distinct-id': 'dflt' } }, () =>
        capture('via-default'),
      );
      await t.kit.flush();
      expect(emulator.events.map((e) => [e.event, e.distinctId])).toEqual([
        ['via-default', 'dflt'],
      ]);
    } finally {
      await resetKit(1_000);
    }
  });

  it('without kit or settings it follows the default kit, even one configured later', async () => {
    const t = new RequestTracker<FakeRequest>();
    configure({ env: {}, apiKey: emulator.projectApiKey, host: emulator.url });
    try {
      await serve(t, { headers: { 'x-posthog-distinct-id': 'later' } }, () =>
        capture('late-config'),
      );
      await t.kit.flush();
      await sleep(10);
      expect(emulator.events.map((e) => e.distinctId)).toEqual(['later']);
    } finally {
      await resetKit(1_000);
    }
  });
});
