import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FlagEvaluator } from './evaluator.ts';
import { FaultQueue } from './faults.ts';
import { normalizeFlag } from './flag.ts';
import { type ParsedBody, parseJsonBody, readBody, recordHeaders, send } from './http.ts';
import { INSPECT_PREFIX, inspect } from './inspect.ts';
import { classify, flagDetail, readBatch, readFlagsRequest, selectFlags } from './protocol.ts';
import type {
  CohortDefinitions,
  EmulatorOptions,
  EndpointKind,
  Fault,
  FaultEndpoint,
  FlagDefinition,
  FlagDefinitionInput,
  GroupTypeMapping,
  PostHogEmulator,
  RecordedEvent,
  RecordedRequest,
  SetFlagsOptions,
  WaitForEventsOptions,
} from './types.ts';

const PREFIX = '[posthog-kit/testing]';

/** What a handler answers. */
interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Events recorded by this request, for the log line. */
  events?: number;
}

interface Waiter {
  check: () => RecordedEvent[] | undefined;
  resolve: (events: RecordedEvent[]) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

interface Settings {
  projectApiKey: string;
  personalApiKey: string;
  quiet: boolean;
  keepEvents: boolean;
  log: (line: string) => void;
  onEvent: ((event: RecordedEvent) => void) | undefined;
  onRequest: ((request: RecordedRequest) => void) | undefined;
}

const authError = (code: string, detail: string) => ({
  type: 'authentication_error',
  code,
  detail,
});

const etagMatches = (header: string | undefined, etag: string): boolean =>
  header?.split(',').some((tag) => {
    const trimmed = tag.trim();
    return trimmed === '*' || trimmed.replace(/^W\//, '') === etag;
  }) === true;

const describeEvents = (events: readonly RecordedEvent[]): string => {
  const shown = events.slice(0, 20).map((e) => `${e.event} (${e.distinctId})`);
  const more = events.length > 20 ? `, and ${events.length - 20} more` : '';
  return events.length === 0
    ? 'none arrived'
    : `${events.length} arrived: ${shown.join(', ')}${more}`;
};

class Emulator implements PostHogEmulator {
  private readonly settings: Settings;
  private readonly server: Server;
  private readonly evaluator: FlagEvaluator;
  private readonly faults = new FaultQueue();
  private address = { url: '', port: 0 };
  private eventList: RecordedEvent[] = [];
  private accepted = 0;
  private requestList: RecordedRequest[] = [];
  private definitions: FlagDefinition[] = [];
  private mapping: GroupTypeMapping = {};
  private cohortMap: CohortDefinitions = {};
  private definitionsJson = '';
  private currentEtag = '';
  private counts = { definitions: 0, served: 0, notModified: 0, flags: 0, batch: 0 };
  private readonly waiters = new Set<Waiter>();
  private readonly sleeps = new Map<ReturnType<typeof setTimeout>, () => void>();
  private closing: Promise<void> | undefined;

  constructor(settings: Settings) {
    this.settings = settings;
    this.evaluator = new FlagEvaluator(settings.projectApiKey);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        send(res, 500, { error: `${PREFIX} emulator error: ${(error as Error)?.message}` });
      });
    });
  }

  get url() {
    return this.address.url;
  }
  get port() {
    return this.address.port;
  }
  get projectApiKey() {
    return this.settings.projectApiKey;
  }
  get personalApiKey() {
    return this.settings.personalApiKey;
  }
  get eventCount(): number {
    return this.accepted;
  }

  get events(): readonly RecordedEvent[] {
    return this.eventList;
  }
  get requests(): readonly RecordedRequest[] {
    return this.requestList;
  }
  get flags(): readonly FlagDefinition[] {
    return this.definitions;
  }
  get etag() {
    return this.currentEtag;
  }
  get definitionsFetchCount() {
    return this.counts.definitions;
  }
  get definitionsServedCount() {
    return this.counts.served;
  }
  get definitionsNotModifiedCount() {
    return this.counts.notModified;
  }
  get flagsRequestCount() {
    return this.counts.flags;
  }
  get batchRequestCount() {
    return this.counts.batch;
  }

  async listen(host: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const bound = (this.server.address() as AddressInfo).port;
    // A wildcard address is not something a client can connect to; loopback is.
    const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
    const hostPart = reachable.includes(':') ? `[${reachable}]` : reachable;
    this.address = { url: `http://${hostPart}:${bound}`, port: bound };
  }

  setFlags(flags: readonly FlagDefinitionInput[], options: SetFlagsOptions = {}): void {
    if (!Array.isArray(flags)) {
      throw new Error(`${PREFIX} setFlags: expected an array of flag definitions`);
    }
    const normalized = flags.map(normalizeFlag);
    const seen = new Set<string>();
    for (const { key } of normalized) {
      if (seen.has(key)) throw new Error(`${PREFIX} setFlags: flag key "${key}" appears twice`);
      seen.add(key);
    }
    this.definitions = normalized.filter((f) => !f.deleted);
    this.mapping = { ...(options.groupTypeMapping ?? this.mapping) };
    this.cohortMap = { ...(options.cohorts ?? this.cohortMap) };
    this.definitionsJson = JSON.stringify({
      flags: this.definitions,
      group_type_mapping: this.mapping,
      cohorts: this.cohortMap,
    });
    const hash = createHash('sha1').update(this.definitionsJson).digest('hex');
    this.currentEtag = `"${hash.slice(0, 24)}"`;
    this.evaluator.update(this.definitions, this.mapping, this.cohortMap);
  }

  fault(endpoint: FaultEndpoint, fault: Fault): void {
    this.faults.add(endpoint, fault);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  reset(): void {
    this.eventList = [];
    this.accepted = 0;
    this.requestList = [];
    this.counts = { definitions: 0, served: 0, notModified: 0, flags: 0, batch: 0 };
    this.faults.clear();
  }

  waitForEvents(
    spec: number | ((event: RecordedEvent) => boolean) | WaitForEventsOptions,
    timeoutMs = 5000,
  ): Promise<RecordedEvent[]> {
    const options: WaitForEventsOptions =
      typeof spec === 'number'
        ? { count: spec }
        : typeof spec === 'function'
          ? { predicate: spec }
          : spec;
    const count = options.count ?? 1;
    if (!Number.isInteger(count) || count < 1) {
      return Promise.reject(
        new Error(`${PREFIX} waitForEvents: count must be a whole number >= 1, got ${count}`),
      );
    }
    const { event, predicate } = options;
    const matches = (e: RecordedEvent) =>
      (event === undefined || e.event === event) && (predicate === undefined || predicate(e));
    const check = () => {
      const found = this.eventList.filter(matches);
      return found.length >= count ? found : undefined;
    };
    let ready: RecordedEvent[] | undefined;
    try {
      ready = check();
    } catch (error) {
      return Promise.reject(error);
    }
    if (ready) return Promise.resolve(ready);
    if (this.closing) {
      return Promise.reject(new Error(`${PREFIX} waitForEvents: emulator is closed`));
    }

    const wanted = [
      `${count} event${count === 1 ? '' : 's'}`,
      event === undefined ? '' : ` named "${event}"`,
      predicate === undefined ? '' : ' matching the predicate',
    ].join('');
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        check,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          const matched = this.eventList.filter(matches).length;
          const got = event === undefined && predicate === undefined ? '' : `, ${matched} matched`;
          reject(
            new Error(
              `${PREFIX} waitForEvents timed out after ${timeoutMs}ms waiting for ${wanted}; ` +
                `events: ${describeEvents(this.eventList)}${got}. posthog-node sends events in ` +
                'batches (flushAt, flushInterval): await client.flush() or use flushAt: 1.',
            ),
          );
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error(`${PREFIX} waitForEvents: emulator closed while waiting`));
    }
    this.waiters.clear();
    for (const [timer, wake] of this.sleeps) {
      clearTimeout(timer);
      wake();
    }
    this.sleeps.clear();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      // Keep-alive sockets (posthog-node's fetch pools them) would hold close() open.
      this.server.closeAllConnections();
    });
    await this.evaluator.close();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleeps.delete(timer);
        resolve();
      }, ms);
      this.sleeps.set(timer, resolve);
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator.local');
    if (url.pathname === INSPECT_PREFIX || url.pathname.startsWith(`${INSPECT_PREFIX}/`)) {
      // Looking at the recording is not part of it: not recorded, logged or faulted.
      req.resume();
      const answer = await inspect(
        { emulator: this, keepEvents: this.settings.keepEvents },
        req.method ?? 'GET',
        url,
      );
      send(res, answer.status, answer.body);
      return;
    }
    const endpoint = classify(url.pathname);
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: recordHeaders(req),
      body: undefined,
      status: 0,
      endpoint,
      fault: undefined,
      timestamp: Date.now(),
    };
    this.requestList.push(record);
    this.count(endpoint);

    let parsed: ParsedBody | undefined;
    let tooLarge = false;
    if (record.method !== 'GET' && record.method !== 'HEAD') {
      const raw = await readBody(req);
      if (raw.bytes === undefined) {
        tooLarge = true;
      } else if (raw.bytes.length > 0 || endpoint !== 'other') {
        parsed = await parseJsonBody(
          raw.bytes,
          req.headers['content-encoding'],
          url.searchParams.get('compression'),
        );
        if (parsed.ok) record.body = parsed.value;
      }
    }

    const fault = this.faults.take(endpoint);
    if (fault) {
      record.fault = fault.drop ? 'drop' : fault.status !== undefined ? 'status' : 'delay';
      if (fault.delayMs > 0) await this.sleep(fault.delayMs);
    }
    if (this.closing) {
      req.socket.destroy();
      return;
    }
    if (fault?.drop) {
      req.socket.destroy();
      this.finish(record, { status: 0 });
      return;
    }

    let answer: Answer;
    if (fault?.status !== undefined) {
      answer = {
        status: fault.status,
        body: fault.body ?? { error: `injected fault: status ${fault.status}` },
        headers: fault.headers ?? {},
      };
    } else if (tooLarge) {
      answer = { status: 413, body: { error: 'request body is larger than 20 MB' } };
    } else {
      answer = await this.route(endpoint, req, url, parsed);
    }
    send(res, answer.status, answer.body, answer.headers);
    this.finish(record, answer);
  }

  private count(endpoint: EndpointKind): void {
    if (endpoint === 'definitions') this.counts.definitions += 1;
    else if (endpoint === 'flags') this.counts.flags += 1;
    else if (endpoint === 'batch') this.counts.batch += 1;
  }

  private finish(record: RecordedRequest, answer: Answer): void {
    record.status = answer.status;
    if (!this.settings.quiet) {
      // The project key travels as `token`: never print it, even a test one.
      const params = new URLSearchParams(record.query);
      for (const secret of ['token', 'api_key']) if (params.has(secret)) params.set(secret, '***');
      const query = params.toString().replace(/%2A/g, '*');
      const detail = [
        answer.events === undefined
          ? ''
          : ` (${answer.events} event${answer.events === 1 ? '' : 's'})`,
        record.fault === undefined ? '' : ` [fault: ${record.fault}]`,
      ].join('');
      const status = record.status === 0 ? 'dropped' : String(record.status);
      this.settings.log(
        `${record.method} ${record.path}${query ? `?${query}` : ''} -> ${status}${detail}`,
      );
    }
    this.callback('onRequest', () => this.settings.onRequest?.(record));
  }

  private callback(name: string, fn: () => void): void {
    try {
      fn();
    } catch (error) {
      console.error(`${PREFIX} ${name} threw:`, error);
    }
  }

  private route(
    endpoint: EndpointKind,
    req: IncomingMessage,
    url: URL,
    parsed: ParsedBody | undefined,
  ): Answer | Promise<Answer> {
    const method = req.method ?? 'GET';
    if (endpoint === 'other') {
      if (url.pathname === '/' && method === 'GET') {
        return { status: 200, body: 'PostHog emulator (@posthog-kit/testing)\n' };
      }
      return { status: 404, body: { error: `no such endpoint: ${method} ${url.pathname}` } };
    }
    const expected = endpoint === 'definitions' ? 'GET' : 'POST';
    if (method !== expected) {
      return { status: 405, body: { error: `${url.pathname} expects ${expected}` } };
    }
    if (endpoint === 'definitions') return this.answerDefinitions(req, url);
    if (!parsed?.ok) {
      return { status: 400, body: { error: parsed?.error ?? 'expected a JSON body' } };
    }
    return endpoint === 'batch'
      ? this.answerBatch(parsed.value, url)
      : this.answerFlags(parsed.value, req, url);
  }

  private answerBatch(body: unknown, url: URL): Answer {
    const batch = readBatch(body, url.searchParams, Date.now());
    if (!batch.ok) return { status: 400, body: { error: batch.error } };
    const { apiKey, events } = batch.value;
    if (apiKey !== this.settings.projectApiKey) {
      const problem = apiKey === undefined ? 'is missing' : 'does not match the emulator';
      return {
        status: 401,
        body: { error: `api_key ${problem}: send the emulator's projectApiKey` },
      };
    }
    this.accepted += events.length;
    if (this.settings.keepEvents) this.eventList.push(...events);
    for (const event of events) this.callback('onEvent', () => this.settings.onEvent?.(event));
    this.wakeWaiters();
    return { status: 200, body: { status: 1 }, events: events.length };
  }

  private wakeWaiters(): void {
    for (const waiter of this.waiters) {
      let found: RecordedEvent[] | undefined;
      try {
        found = waiter.check();
      } catch (error) {
        // A throwing predicate fails its own wait, never the batch (posthog-node would resend it).
        clearTimeout(waiter.timer);
        this.waiters.delete(waiter);
        waiter.reject(error as Error);
        continue;
      }
      if (found) {
        clearTimeout(waiter.timer);
        this.waiters.delete(waiter);
        waiter.resolve(found);
      }
    }
  }

  private async answerFlags(body: unknown, req: IncomingMessage, url: URL): Promise<Answer> {
    const read = readFlagsRequest(body, url.searchParams, req.headers['user-agent']);
    if (!read.ok) return { status: 400, body: { error: read.error } };
    const request = read.value;
    if (request.token !== this.settings.projectApiKey) {
      const problem = request.token === undefined ? 'is missing' : 'does not match the emulator';
      return {
        status: 401,
        body: authError('invalid_api_key', `Project API key (token) ${problem}.`),
      };
    }
    if (request.distinctId === '') {
      return { status: 400, body: { error: 'distinct_id is required' } };
    }
    // Taken together so a concurrent setFlags cannot mix two sets of definitions.
    const mapping = this.mapping;
    const selected = selectFlags(this.definitions, request);
    const outcomes = await this.evaluator.evaluate({
      ...request,
      flagKeys: selected.map((f) => f.key),
    });
    const flags: Record<string, unknown> = {};
    selected.forEach((definition, index) => {
      const outcome = outcomes[index] ?? { key: definition.key, unresolved: 'error' };
      flags[definition.key] = flagDetail(definition, outcome, request, mapping);
    });
    return {
      status: 200,
      body: {
        flags,
        errorsWhileComputingFlags: outcomes.some(
          (o) => 'unresolved' in o && o.unresolved === 'error',
        ),
        requestId: randomUUID(),
        evaluatedAt: Date.now(),
      },
    };
  }

  private answerDefinitions(req: IncomingMessage, url: URL): Answer {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    if (bearer !== this.settings.personalApiKey) {
      const problem = bearer === undefined ? 'is missing' : 'is invalid';
      return {
        status: 401,
        body: authError(
          'authentication_failed',
          `Personal API key ${problem}: send "Authorization: Bearer <personalApiKey>".`,
        ),
      };
    }
    if (url.searchParams.get('token') !== this.settings.projectApiKey) {
      return {
        status: 401,
        body: authError(
          'authentication_failed',
          'The token parameter is not this project API key.',
        ),
      };
    }
    const headers = { etag: this.currentEtag };
    if (etagMatches(req.headers['if-none-match'], this.currentEtag)) {
      this.counts.notModified += 1;
      return { status: 304, headers };
    }
    this.counts.served += 1;
    return {
      status: 200,
      body: this.definitionsJson,
      headers: { ...headers, 'content-type': 'application/json' },
    };
  }
}

const requireKey = (name: string, value: string): string => {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new Error(`${PREFIX} ${name}: expected a non-empty string`);
  }
  return value;
};

/** Starts an emulator on loopback (a free port by default) and resolves once it listens. */
export async function startEmulator(options: EmulatorOptions = {}): Promise<PostHogEmulator> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error(`${PREFIX} port: expected 0 to 65535, got ${String(port)}`);
  }
  const emulator = new Emulator({
    projectApiKey: requireKey('projectApiKey', options.projectApiKey ?? 'phc_test_emulator'),
    personalApiKey: requireKey('personalApiKey', options.personalApiKey ?? 'phx_test_emulator'),
    quiet: options.quiet ?? true,
    keepEvents: options.keepEvents ?? true,
    log: options.log ?? ((line) => console.log(line)),
    onEvent: options.onEvent,
    onRequest: options.onRequest,
  });
  try {
    emulator.setFlags(options.flags ?? [], {
      groupTypeMapping: options.groupTypeMapping ?? {},
      cohorts: options.cohorts ?? {},
    });
    await emulator.listen(host, port);
  } catch (error) {
    await emulator.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === undefined) throw error;
    throw new Error(
      `${PREFIX} cannot listen on ${host}:${port} (${code}): check the host, or pick another port (0 picks a free one)`,
      { cause: error },
    );
  }
  return emulator;
}
