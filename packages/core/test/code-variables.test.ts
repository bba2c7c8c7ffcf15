// Code variables through a real Express app over real HTTP, posthog-node talking to the
// emulator: the debugger pauses at each throw in this file (in-app), the variables
// ride on the `$exception` event's frames.
import { fileURLToPath } from 'node:url';
import { runInThisContext } from 'node:vm';
import type { RecordedEvent } from '@posthog-kit/testing';
import { describe, expect, it } from 'vitest';
import { codeVariablesStats, configureCodeVariables } from '../src/code-variables/index.ts';
import {
  captureException,
  type PostHogKit,
  CODE_VARIABLES_REDACTED_VALUE as REDACTED,
  setCaptureExceptionCodeVariablesContext,
  setCodeVariablesIgnorePatternsContext,
  setCodeVariablesMaskPatternsContext,
  CODE_VARIABLES_TOO_LONG_VALUE as TOO_LONG,
} from '../src/index.ts';
import { codeVariablesHarness } from './code-variables-harness.ts';

interface Frame {
  filename: string;
  function: string;
  in_app: boolean;
  code_variables?: Record<string, string | number>;
}
interface ExceptionEntry {
  type: string;
  value: string;
  mechanism: { type: string; handled: boolean };
  stacktrace?: { frames: Frame[] };
}

const harness = codeVariablesHarness();
const { makeKit, serve } = harness;

/** Requests a path and returns the `$exception` event it produced. */
async function exceptionFrom(kit: PostHogKit, url: string, message: string) {
  const res = await fetch(url);
  expect(res.status).toBe(500);
  await kit.flush();
  const [event] = await harness.emulator.waitForEvents({
    event: '$exception',
    predicate: (e) => exceptionsOf(e)[0]?.value === message,
  });
  return event as RecordedEvent;
}

const exceptionsOf = (event: RecordedEvent) => event.properties.$exception_list as ExceptionEntry[];
const framesOf = (event: RecordedEvent) => exceptionsOf(event)[0]?.stacktrace?.frames ?? [];
const variablesOf = (event: RecordedEvent, fn: string) =>
  framesOf(event).find((f) => f.function === fn || f.function.endsWith(`.${fn}`))?.code_variables;
const withVariables = (event: RecordedEvent) => framesOf(event).filter((f) => f.code_variables);

// ----- the app's code: named functions, so frames are easy to find -----

function applyDiscount(subtotal: number, code: string): number {
  const rate = code === 'HALF' ? 0.5 : 0;
  const floor = { min: 10, currency: 'EUR' };
  if (subtotal * rate < floor.min) throw new Error('discount below the floor');
  return subtotal * rate;
}

function placeOrder(cart: { items: string[]; prices: number[] }, customer: string): number {
  const subtotal = cart.prices.reduce((a, b) => a + b, 0);
  const itemCount = cart.items.length;
  return applyDiscount(subtotal, `${customer === 'vip' ? 'HALF' : 'NONE'}`) + itemCount;
}

// Secrets are made at run time: posthog-node sends source lines around each frame, so a
// secret written in this file would reach PostHog as source, whatever the masking does.
const reveal = (s: string) => [...s].reverse().join('');
const SECRETS = {
  password: reveal('eulav-drowssap-2retnuh'),
  token: reveal('e5d6c7b8a9f4_evil_kot'),
  conn: reveal('nnoc-tr3c3s'),
  urlPassword: reveal('lru-ni-dr0w55ap'),
  stripe: reveal('rQpOnMlKjIhGfEdCbAzYxH15_evil_ks'),
  nestedKey: reveal('detsen-321-k'),
  basic: reveal('zyx cisaB'),
  session: reveal('6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1z'),
  bearer: reveal('0987654321fedcbazyx reraeB'),
};

function connectAndFail(): never {
  const password = SECRETS.password;
  const token = SECRETS.token;
  const connectionString = `postgres://admin:${SECRETS.conn}@db.internal:5432/shop`;
  const databaseUrl = `mysql://reporter:${SECRETS.urlPassword}@replica:3306/stats`;
  const stripeKey = SECRETS.stripe;
  const host = 'db.internal';
  const nested = {
    user: 'ann',
    apiKey: SECRETS.nestedKey,
    options: { Authorization: SECRETS.basic },
  };
  const headers = { cookie: `sid=${SECRETS.session}`, accept: 'application/json' };
  const rawHeaders = ['Accept', 'application/json', 'Authorization', SECRETS.bearer];
  const credentials = [password, token, connectionString, databaseUrl, stripeKey];
  throw new Error(
    `cannot connect to ${host} (${credentials.length}${Object.keys(nested).length}${Object.keys(headers).length}${rawHeaders.length})`,
  );
}

describe('code variables', () => {
  it('takes the locals of the throwing in-app frame and of its in-app callers', async () => {
    const kit = await makeKit();
    const url = await serve(kit, {
      '/order': (_req, res) => {
        const orderId = 'ord-42';
        const cart = { items: ['book', 'pen'], prices: [12, 3] };
        res.json(placeOrder(cart, `customer-${orderId}`));
      },
    });
    const event = await exceptionFrom(kit, `${url}/order`, 'discount below the floor');

    expect(variablesOf(event, 'applyDiscount')).toEqual({
      subtotal: 15,
      code: 'NONE',
      rate: 0,
      floor: JSON.stringify({ min: 10, currency: 'EUR' }),
    });
    expect(variablesOf(event, 'placeOrder')).toMatchObject({
      subtotal: 15,
      itemCount: 2,
      customer: 'customer-ord-42',
      cart: JSON.stringify({ items: ['book', 'pen'], prices: [12, 3] }),
    });
    // The route handler is an anonymous arrow function: matched by file and line.
    expect(withVariables(event).some((f) => f.code_variables?.orderId === 'ord-42')).toBe(true);
    // Express's own frames (node_modules) are not in-app and carry nothing.
    const outside = framesOf(event).filter((f) => f.filename.includes('node_modules'));
    expect(outside.length).toBeGreaterThan(0);
    expect(outside.every((f) => !f.in_app && f.code_variables === undefined)).toBe(true);
  });

  it('masks a password, a token and connection strings; none of them reaches PostHog', async () => {
    const kit = await makeKit();
    const url = await serve(kit, { '/db': () => connectAndFail() });
    const event = await exceptionFrom(kit, `${url}/db`, 'cannot connect to db.internal (5324)');
    const vars = variablesOf(event, 'connectAndFail');
    expect(vars).toMatchObject({
      password: REDACTED,
      token: REDACTED,
      connectionString: REDACTED,
      stripeKey: REDACTED,
      host: 'db.internal',
      // A URL keeps its shape, its credentials do not.
      databaseUrl: `mysql://${REDACTED}@replica:3306/stats`,
    });
    expect(JSON.parse(vars?.nested as string)).toEqual({
      user: 'ann',
      apiKey: REDACTED,
      options: { Authorization: REDACTED },
    });
    expect(JSON.parse(vars?.headers as string)).toEqual({
      cookie: REDACTED,
      accept: 'application/json',
    });
    expect(JSON.parse(vars?.rawHeaders as string)).toEqual([
      'Accept',
      'application/json',
      REDACTED,
      REDACTED,
    ]);
    // Nowhere in what the emulator received, in any form.
    const raw = JSON.stringify(harness.emulator.requests.map((r) => r.body));
    expect(raw).toContain('db.internal');
    for (const secret of Object.values(SECRETS)) expect(raw).not.toContain(secret);
  });

  it('user mask patterns are added to the defaults; dropping the defaults takes useDefaultMaskPatterns', async () => {
    const added = await makeKit({ codeVariablesMaskPatterns: ['^card'] });
    const url = await serve(added, {
      '/pay': () => {
        const cardNumber = '4242 4242 4242 4242';
        const password = 'still-masked';
        const amount = 12;
        throw new Error(`payment of ${amount} refused (${cardNumber.length}${password.length})`);
      },
    });
    const event = await exceptionFrom(added, `${url}/pay`, 'payment of 12 refused (1912)');
    expect(withVariables(event)[0]?.code_variables).toMatchObject({
      cardNumber: REDACTED,
      password: REDACTED,
      amount: 12,
    });

    harness.emulator.reset();
    const without = await makeKit({ useDefaultMaskPatterns: false });
    const url2 = await serve(without, {
      '/pay': () => {
        const password = 'shown-now';
        throw new Error(`no defaults (${password.length})`);
      },
    });
    const event2 = await exceptionFrom(without, `${url2}/pay`, 'no defaults (9)');
    expect(withVariables(event2)[0]?.code_variables).toMatchObject({ password: 'shown-now' });
  });

  it('drops names matching the ignore patterns (default ^__)', async () => {
    const byDefault = await makeKit();
    const route = () => {
      const __internal = 'dropped';
      const tmpBuffer = 'kept by default';
      const visible = 1;
      throw new Error(`ignore ${__internal.length + tmpBuffer.length + visible}`);
    };
    const event = await exceptionFrom(
      byDefault,
      `${await serve(byDefault, { '/i': route })}/i`,
      'ignore 23',
    );
    const vars = withVariables(event)[0]?.code_variables;
    expect(vars).toMatchObject({ tmpBuffer: 'kept by default', visible: 1 });
    expect(vars).not.toHaveProperty('__internal');

    harness.emulator.reset();
    const custom = await makeKit({ codeVariablesIgnorePatterns: ['^tmp'] });
    const event2 = await exceptionFrom(
      custom,
      `${await serve(custom, { '/i': route })}/i`,
      'ignore 23',
    );
    const vars2 = withVariables(event2)[0]?.code_variables;
    expect(vars2).toMatchObject({ __internal: 'dropped', visible: 1 });
    expect(vars2).not.toHaveProperty('tmpBuffer');
  });

  it('limits: long strings, big and deep objects, many variables', async () => {
    const kit = await makeKit();
    const url = await serve(kit, {
      '/long': () => {
        const medium = 'm'.repeat(1500);
        const huge = 'h'.repeat(5000);
        const items = Array.from({ length: 1000 }, (_, i) => i);
        const wide = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, i]));
        const deep = { a: { b: { c: { d: { e: 'bottom' } } } } };
        throw new Error(
          `limits ${medium.length + huge.length + items.length + Object.keys(wide).length + Object.keys(deep).length}`,
        );
      },
      '/many': () => manyVariables(),
    });
    const event = await exceptionFrom(kit, `${url}/long`, 'limits 7601');
    const vars = withVariables(event)[0]?.code_variables ?? {};
    expect(vars.medium).toBe(`${'m'.repeat(1021)}...`);
    expect(vars.huge).toBe(TOO_LONG);
    const items = JSON.parse(vars.items as string) as unknown[];
    expect(items).toHaveLength(21);
    expect(items.at(-1)).toBe('... 980 more');
    const wide = JSON.parse(vars.wide as string) as Record<string, unknown>;
    expect(Object.keys(wide)).toHaveLength(21);
    expect(wide['...']).toBe('80 more');
    expect(JSON.parse(vars.deep as string)).toEqual({ a: { b: { c: '[Object]' } } });

    harness.emulator.reset();
    const many = await exceptionFrom(kit, `${url}/many`, 'many 28000');
    const frame = withVariables(many)[0]?.code_variables ?? {};
    const size = Object.entries(frame).reduce(
      (n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(String(v)),
      0,
    );
    expect(Object.keys(frame).length).toBeGreaterThan(5);
    expect(Object.keys(frame).length).toBeLessThan(28);
    expect(size).toBeLessThanOrEqual(10 * 1024);
  });

  it('context overrides apply inside their context only', async () => {
    const kit = await makeKit();
    const url = await serve(kit, {
      '/off': () => {
        setCaptureExceptionCodeVariablesContext(false);
        const hidden = 'not taken';
        throw new Error(`ctx off ${hidden.length}`);
      },
      '/mask': () => {
        setCodeVariablesMaskPatternsContext(['^basket$']);
        const basket = 'masked here';
        const password = 'defaults still apply';
        throw new Error(`ctx mask ${basket.length + password.length}`);
      },
      '/ignore': () => {
        setCodeVariablesIgnorePatternsContext(['^scratch']);
        const scratchPad = 'dropped here';
        const __kept = 'the default ^__ is replaced';
        throw new Error(`ctx ignore ${scratchPad.length + __kept.length}`);
      },
      '/plain': () => {
        const basket = 'shown';
        const scratchPad = 'shown too';
        throw new Error(`plain ${basket.length + scratchPad.length}`);
      },
    });
    const off = await exceptionFrom(kit, `${url}/off`, 'ctx off 9');
    expect(withVariables(off)).toEqual([]);
    const mask = await exceptionFrom(kit, `${url}/mask`, 'ctx mask 31');
    expect(withVariables(mask)[0]?.code_variables).toMatchObject({
      basket: REDACTED,
      password: REDACTED,
    });
    const ignore = await exceptionFrom(kit, `${url}/ignore`, 'ctx ignore 39');
    const ignored = withVariables(ignore)[0]?.code_variables;
    expect(ignored).toMatchObject({ __kept: 'the default ^__ is replaced' });
    expect(ignored).not.toHaveProperty('scratchPad');
    const plain = await exceptionFrom(kit, `${url}/plain`, 'plain 14');
    expect(withVariables(plain)[0]?.code_variables).toMatchObject({
      basket: 'shown',
      scratchPad: 'shown too',
    });
  });

  it('a manual capture of a caught error carries the variables of its throw', async () => {
    const kit = await makeKit();
    const url = await serve(kit, {
      '/caught': (_req, res) => {
        try {
          placeOrder({ items: ['x'], prices: [1] }, 'regular');
        } catch (error) {
          captureException(error, { properties: { handled: 'yes' } });
        }
        // Captured once: the middleware skips the same error thrown on.
        res.status(500).end();
      },
    });
    await fetch(`${url}/caught`);
    await kit.flush();
    const [event] = await harness.emulator.waitForEvents({ event: '$exception' });
    expect(event?.properties.handled).toBe('yes');
    expect(variablesOf(event as RecordedEvent, 'applyDiscount')).toMatchObject({ subtotal: 1 });
  });

  it('inAppModules decides in_app, and so which frames get variables', async () => {
    const route = () => placeOrder({ items: ['x'], prices: [2] }, 'regular');
    const ours = await makeKit({ inAppModules: ['packages/core/test/'] });
    const event = await exceptionFrom(
      ours,
      `${await serve(ours, { '/m': route })}/m`,
      'discount below the floor',
    );
    const inApp = framesOf(event).filter((f) => f.in_app);
    expect(inApp.length).toBeGreaterThan(0);
    expect(inApp.every((f) => f.filename.startsWith('packages/core/test/'))).toBe(true);
    expect(variablesOf(event, 'applyDiscount')).toMatchObject({ subtotal: 2 });

    harness.emulator.reset();
    const none = await makeKit({ inAppModules: ['elsewhere/'] });
    const event2 = await exceptionFrom(
      none,
      `${await serve(none, { '/m': route })}/m`,
      'discount below the floor',
    );
    expect(framesOf(event2).some((f) => f.in_app)).toBe(false);
    expect(withVariables(event2)).toEqual([]);
  });

  it("runs before the app's own before_send, which sees the final frames", async () => {
    const seen: unknown[] = [];
    const kit = await makeKit({
      clientOptions: {
        before_send: (event: { event: string; properties: Record<string, unknown> }) => {
          if (event.event === '$exception') {
            seen.push(structuredClone(event.properties.$exception_list));
            event.properties.checked_by_app = true;
          }
          return event;
        },
      },
    });
    const url = await serve(kit, { '/b': () => placeOrder({ items: [], prices: [4] }, 'vip') });
    const event = await exceptionFrom(kit, `${url}/b`, 'discount below the floor');
    expect(event.properties.checked_by_app).toBe(true);
    const list = seen[0] as ExceptionEntry[];
    expect(list[0]?.stacktrace?.frames.some((f) => f.code_variables?.subtotal === 4)).toBe(true);
  });

  it('rate limit: beyond the limit exceptions are captured without variables, pausing stops', async () => {
    const kit = await makeKit();
    configureCodeVariables({ maxExceptionsPerSecond: 3, cooldownMs: 60_000 });
    const url = await serve(kit, {
      '/burst': (req) => {
        const n = Number(req.query.n);
        throw new Error(`burst ${n}`);
      },
    });
    for (let n = 0; n < 10; n++) await fetch(`${url}/burst?n=${n}`);
    await kit.flush();
    const events = await harness.emulator.waitForEvents({ event: '$exception', count: 10 });
    const taken = events.filter((e) => withVariables(e).length > 0);
    // Within one second: the third pause switches pausing off for the cool-down.
    expect(taken.length).toBeGreaterThanOrEqual(1);
    expect(taken.length).toBeLessThanOrEqual(3);
    expect(codeVariablesStats()).toMatchObject({ pausing: false });
    expect(codeVariablesStats().rateLimited).toBeGreaterThanOrEqual(1);
    configureCodeVariables();
    expect(codeVariablesStats().pausing).toBe(true);
  });

  it('exceptions thrown and caught inside node_modules do not pause the app', async () => {
    await makeKit();
    configureCodeVariables({ maxExceptionsPerSecond: 1_000 });
    // The same library code, loaded once from node_modules and once from the app.
    const source = 'function throwsAndCatches() { try { JSON.parse("{"); } catch { return 1; } }';
    const inLibrary = runInThisContext(`(${source})`, {
      filename: fileURLToPath(new URL('./fixtures/node_modules/lib/index.js', import.meta.url)),
    }) as () => number;
    const inApp = runInThisContext(`(${source})`, {
      filename: fileURLToPath(new URL('./fixtures/app-helper.js', import.meta.url)),
    }) as () => number;
    const pauses = () => codeVariablesStats().pauses;

    const before = pauses();
    for (let i = 0; i < 20; i++) inLibrary();
    expect(pauses() - before).toBe(0);
    for (let i = 0; i < 20; i++) inApp();
    expect(pauses() - before).toBe(20);
    // Thrown by Node's own code but caught here: the app's frame gets its variables.
    for (let i = 0; i < 5; i++) {
      try {
        new URL('not a url');
      } catch {
        // expected
      }
    }
    expect(pauses() - before).toBe(25);
  });
});

function manyVariables(): never {
  const filler = 'f'.repeat(1000);
  const v01 = `${filler}01`;
  const v02 = `${filler}02`;
  const v03 = `${filler}03`;
  const v04 = `${filler}04`;
  const v05 = `${filler}05`;
  const v06 = `${filler}06`;
  const v07 = `${filler}07`;
  const v08 = `${filler}08`;
  const v09 = `${filler}09`;
  const v10 = `${filler}10`;
  const v11 = `${filler}11`;
  const v12 = `${filler}12`;
  const v13 = `${filler}13`;
  const v14 = `${filler}14`;
  const v15 = `${filler}15`;
  const v16 = `${filler}16`;
  const v17 = `${filler}17`;
  const v18 = `${filler}18`;
  const v19 = `${filler}19`;
  const v20 = `${filler}20`;
  const v21 = `${filler}21`;
  const v22 = `${filler}22`;
  const v23 = `${filler}23`;
  const v24 = `${filler}24`;
  const v25 = `${filler}25`;
  const v26 = `${filler}26`;
  const all = [v01, v02, v03, v04, v05, v06, v07, v08, v09, v10, v11, v12, v13];
  const more = [v14, v15, v16, v17, v18, v19, v20, v21, v22, v23, v24, v25, v26];
  throw new Error(`many ${(all.length + more.length + 2) * filler.length}`);
}
