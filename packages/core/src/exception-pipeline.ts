import type { BeforeSendFn, EventMessage } from 'posthog-node';
import { type AutocaptureKit, startAutocapture } from './autocapture.ts';
import type { Scope } from './context.ts';
import type { ErrorReporter } from './errors.ts';
import { DEFAULT_CODE_VARIABLES_MASK_PATTERNS, isInAppFile } from './frames.ts';
import type { ResolvedSettings } from './settings.ts';
import type { ExceptionMechanism } from './types.ts';

/** The Node-only code-variables entry, once loaded. */
type CodeVariablesModule = typeof import('./code-variables/index.ts');

/** What the exception pipeline needs of its kit, and nothing more. */
export interface ExceptionsHost {
  readonly settings: Pick<
    ResolvedSettings,
    | 'enableExceptionAutocapture'
    | 'captureExceptionCodeVariables'
    | 'inAppModules'
    | 'useDefaultMaskPatterns'
    | 'codeVariablesMaskPatterns'
    | 'codeVariablesIgnorePatterns'
  >;
  readonly errors: Pick<ErrorReporter, 'warn' | 'debug' | 'background'>;
  /** The kit itself, for process autocapture (its context, its shutdown before a crash). */
  readonly kit: AutocaptureKit;
  /** The kit's one capture path; the event's uuid, or undefined when skipped. */
  capture(error: unknown, mechanism: ExceptionMechanism, scope: Scope | undefined): void;
}

interface PendingException {
  error: unknown;
  scope: Scope | undefined;
  mechanism: ExceptionMechanism | undefined;
}

// A capture whose event never reaches before_send (dropped before it) must not pin its error.
const MAX_PENDING = 1_000;

interface EventFrame {
  filename?: string;
  in_app?: boolean;
}
interface EventException {
  mechanism?: Record<string, unknown>;
  stacktrace?: { frames?: EventFrame[] };
}

function currentDirectory(): string | undefined {
  try {
    return (globalThis as { process?: { cwd?: () => string } }).process?.cwd?.();
  } catch {
    return undefined;
  }
}

/**
 * A kit's exception pipeline: process autocapture, the mechanism of each capture, `in_app`
 * on every frame, and code variables (the Node-only module is imported only when the
 * setting is on). posthog-node builds `$exception` events asynchronously: the capture
 * notes the error under the event's uuid, and the pipeline's before_send finds it there.
 */
export class ExceptionPipeline {
  /** Settles when autocapture and the debugger are in place; never rejects. */
  readonly ready: Promise<void>;
  private readonly host: ExceptionsHost;
  private readonly cwd = currentDirectory();
  private readonly pending = new Map<string, PendingException>();
  private codeVariables: CodeVariablesModule | undefined;
  private stopDebugger: (() => void) | undefined;
  private stopAutocapture: (() => void) | undefined;
  private closed = false;

  constructor(host: ExceptionsHost, active: boolean) {
    this.host = host;
    this.ready = active ? this.setup() : Promise.resolve();
  }

  private setup(): Promise<void> {
    const { settings, errors } = this.host;
    if (settings.enableExceptionAutocapture) {
      this.stopAutocapture = startAutocapture(this.host.kit, (error, mechanism, scope) =>
        this.host.capture(error, mechanism, scope),
      );
    }
    if (!settings.captureExceptionCodeVariables) return Promise.resolve();
    return import('./code-variables/index.ts').then(
      (module) => {
        if (this.closed) return;
        const attached = module.attachDebugger({
          wantsVariables: () =>
            this.host.kit.context.current()?.captureExceptionCodeVariables !== false,
          isInApp: (file) => isInAppFile(file, settings.inAppModules, this.cwd),
          inAppModules: settings.inAppModules,
        });
        if (typeof attached === 'string') {
          errors.warn(`code variables are off: ${attached}`);
          return;
        }
        this.codeVariables = module;
        this.stopDebugger = attached;
      },
      (error: unknown) => errors.background('code-variables', error),
    );
  }

  /**
   * Stops autocapture and detaches the debugger (the last kit's detach closes it). Events
   * already on their way (the flush of a shutdown) still get their variables.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopAutocapture?.();
    this.stopDebugger?.();
  }

  /** Called with the event's uuid before posthog-node builds the `$exception` event. */
  note(
    uuid: string,
    error: unknown,
    scope: Scope | undefined,
    mechanism: ExceptionMechanism | undefined,
  ): void {
    if (!this.codeVariables && !mechanism) return;
    if (this.pending.size >= MAX_PENDING) {
      const oldest = this.pending.keys().next().value;
      if (oldest !== undefined) this.pending.delete(oldest);
    }
    this.pending.set(uuid, { error, scope, mechanism });
  }

  /**
   * The kit's before_send, first in line before the user's own (`clientOptions.before_send`).
   * A failure here never drops the event.
   */
  beforeSend(user: BeforeSendFn | BeforeSendFn[] | undefined): BeforeSendFn[] {
    const ours: BeforeSendFn = (event) => {
      if (event?.event === '$exception') {
        try {
          this.rewrite(event);
        } catch (error) {
          this.host.errors.debug(
            `exception frames left as posthog-node built them: ${String(error)}`,
          );
        }
      }
      return event;
    };
    return user === undefined ? [ours] : [ours, ...(Array.isArray(user) ? user : [user])];
  }

  private rewrite(event: EventMessage): void {
    const list = event.properties?.$exception_list as EventException[] | undefined;
    if (!Array.isArray(list)) return;
    const s = this.host.settings;
    for (const exception of list) {
      for (const frame of exception?.stacktrace?.frames ?? []) {
        frame.in_app = isInAppFile(frame.filename, s.inAppModules, this.cwd);
      }
    }
    const uuid = event.uuid;
    const entry = uuid === undefined ? undefined : this.pending.get(uuid);
    if (!entry || uuid === undefined) return;
    this.pending.delete(uuid);
    const first = list[0];
    if (entry.mechanism && first) first.mechanism = { ...first.mechanism, ...entry.mechanism };
    const scope = entry.scope;
    if (!this.codeVariables || scope?.captureExceptionCodeVariables === false) return;
    this.codeVariables.addCodeVariables(list, entry.error, {
      maskPatterns: [
        ...(s.useDefaultMaskPatterns ? DEFAULT_CODE_VARIABLES_MASK_PATTERNS : []),
        ...(scope?.codeVariablesMaskPatterns ?? s.codeVariablesMaskPatterns),
      ],
      ignorePatterns: scope?.codeVariablesIgnorePatterns ?? s.codeVariablesIgnorePatterns,
      cwd: this.cwd,
      report: (message) => this.host.errors.warn(message),
    });
  }
}
