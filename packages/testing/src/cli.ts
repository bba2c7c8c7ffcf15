#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startEmulator } from './emulator.ts';
import { maskSecrets } from './inspect.ts';
import type {
  CohortDefinitions,
  EmulatorOptions,
  FlagDefinitionInput,
  GroupTypeMapping,
  RecordedEvent,
} from './types.ts';

const USAGE = `Usage: posthog-emulator [options]

A local PostHog emulator: POST /batch/, POST /flags/?v=2, GET /flags/definitions.
What it recorded: GET /_emulator/events, /_emulator/requests, /_emulator/stats.

Options:
  --port <n>            port to listen on (default 0: a free port)
  --host <addr>         interface to listen on (default 127.0.0.1)
  --flags <file.json>   flag definitions: an array, or { flags, group_type_mapping, cohorts }
  --project-key <key>   project API key to accept (default phc_test_emulator)
  --personal-key <key>  personal API key for /flags/definitions (default phx_test_emulator)
  --print-events        print each received event on one line
  --json                stdout: each received event, whole, as one JSON line (keys masked);
                        every other line goes to stderr
  --count-only          count events without keeping them (load tests)
  --quiet               do not print a line per request
  -h, --help            show this help`;

const fail = (message: string): never => {
  console.error(`posthog-emulator: ${message}\n\n${USAGE}`);
  process.exit(2);
};

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Reads a definitions file: a bare array, or a saved `/flags/definitions` answer. */
function readFlagsFile(
  path: string,
): Pick<EmulatorOptions, 'flags' | 'groupTypeMapping' | 'cohorts'> {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    return fail(`--flags ${path}: ${(error as Error).message}`);
  }
  if (Array.isArray(data)) return { flags: data as FlagDefinitionInput[] };
  if (isObject(data) && Array.isArray(data.flags)) {
    return {
      flags: data.flags as FlagDefinitionInput[],
      groupTypeMapping: (data.group_type_mapping ??
        data.groupTypeMapping ??
        {}) as GroupTypeMapping,
      cohorts: (data.cohorts ?? {}) as CohortDefinitions,
    };
  }
  return fail(`--flags ${path}: expected an array of flags or { "flags": [...] }`);
}

const eventLine = (event: RecordedEvent, secrets: readonly string[]): string => {
  const properties = Object.fromEntries(
    Object.entries(event.properties).filter(([key]) => !key.startsWith('$lib')),
  );
  const json = JSON.stringify(maskSecrets(properties, secrets));
  const shown = json.length > 200 ? `${json.slice(0, 199)}\u2026` : json;
  return `event ${event.event} distinct_id=${event.distinctId} ${shown}`;
};

async function main(): Promise<void> {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse().values;
  } catch (error) {
    return fail((error as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    fail(`--port: expected a number from 0 to 65535, got "${values.port}"`);
  }
  if (values.json && values['print-events']) fail('--json and --print-events: choose one');
  const quiet = values.quiet ?? false;
  // With --json, stdout carries events only, so that it can be piped into jq or a test.
  const say = values.json
    ? (line: string) => console.error(line)
    : (line: string) => console.log(line);
  const secrets = [
    values['project-key'] ?? 'phc_test_emulator',
    values['personal-key'] ?? 'phx_test_emulator',
  ];
  const emulator = await startEmulator({
    ...(values.flags !== undefined && readFlagsFile(values.flags)),
    host: values.host ?? '127.0.0.1',
    port,
    quiet,
    log: say,
    ...(values['project-key'] !== undefined && { projectApiKey: values['project-key'] }),
    ...(values['personal-key'] !== undefined && { personalApiKey: values['personal-key'] }),
    ...(values['print-events'] && { onEvent: (event) => console.log(eventLine(event, secrets)) }),
    ...(values.json && {
      onEvent: (event) => console.log(JSON.stringify(maskSecrets(event, secrets))),
    }),
    ...(values['count-only'] && { keepEvents: false }),
  }).catch((error: Error) => fail(error.message));

  say(`PostHog emulator listening on ${emulator.url}`);
  if (!quiet) {
    say(
      // The default test keys are printed so clients can be set up; keys given on the
      // command line never are.
      `project key ${values['project-key'] === undefined ? emulator.projectApiKey : '(as given)'}, ` +
        `personal key ${values['personal-key'] === undefined ? emulator.personalApiKey : '(as given)'}, ` +
        `${emulator.flags.length} flag(s)`,
    );
  }
  const stop = () => {
    void emulator.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

function parse() {
  return parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      flags: { type: 'string' },
      'project-key': { type: 'string' },
      'personal-key': { type: 'string' },
      'print-events': { type: 'boolean' },
      json: { type: 'boolean' },
      'count-only': { type: 'boolean' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
}

await main();
