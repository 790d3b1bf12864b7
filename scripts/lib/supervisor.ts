/**
 * Runs segflow's long-lived processes (worker, trigger listener, profile API) as separate child
 * processes under one parent: a saturated worker then cannot slow the API's event loop or delay
 * the answer to a query. A child that exits on its own is restarted with exponential backoff;
 * stop() sends SIGTERM to every child and SIGKILL to those still running after the timeout.
 *
 * Each child writes JSON log lines (SEGFLOW_LOG_FORMAT=json); every line goes to `onLine` with the
 * name of the process it came from, so the parent writes one log stream tagged by process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PROJECT_ROOT } from '../../core/config.js';

const EXIT_WITH_PARENT = fileURLToPath(new URL('./exit-with-parent.mjs', import.meta.url));

export interface SupervisedProcess {
  /** Short name used to tag its log lines (`worker`, `listener`, `api`). */
  readonly name: string;
  /** A TypeScript entry point, relative to the project root, run with `node --import tsx`. */
  readonly entry: string;
  readonly args?: readonly string[];
}

export interface BackoffSettings {
  /** Wait before the first restart. */
  initialMs: number;
  /** Longest wait between restarts. */
  maxMs: number;
  /** A process that ran this long before exiting counts as healthy: its next restart waits initialMs again. */
  resetAfterMs: number;
}

export const SUPERVISOR_DEFAULTS = {
  backoff: { initialMs: 1_000, maxMs: 30_000, resetAfterMs: 60_000 } satisfies BackoffSettings,
  stopTimeoutMs: 25_000,
} as const;

/** A line a child wrote: its parsed JSON record, or the raw text (stack traces, stderr of node itself). */
export type ChildLine = { process: string; stream: 'stdout' | 'stderr' } & (
  { record: Record<string, unknown>; text?: undefined } | { record?: undefined; text: string }
);

/** What the supervisor itself has to say: a process started, exited, is being restarted. */
export interface SupervisorEvent {
  process: string;
  event: 'started' | 'exited' | 'restarting' | 'stopped' | 'killed';
  childPid?: number;
  code?: number | null;
  signal?: string | null;
  uptimeMs?: number;
  restartInMs?: number;
  restarts?: number;
}

export interface SupervisorOptions {
  onLine: (line: ChildLine) => void;
  onEvent: (event: SupervisorEvent) => void;
  /** Environment of every child (default: this process's), with SEGFLOW_LOG_FORMAT=json on top. */
  env?: NodeJS.ProcessEnv;
  backoff?: Partial<BackoffSettings>;
  stopTimeoutMs?: number;
}

export interface Supervisor {
  /** The current pid of each process (undefined while it waits for a restart). */
  pids(): Record<string, number | undefined>;
  /** Restarts so far, per process. */
  restarts(): Record<string, number>;
  /** SIGTERM to every child, SIGKILL after the timeout; resolves when none is left. */
  stop(): Promise<void>;
}

interface Slot {
  spec: SupervisedProcess;
  child?: ChildProcess;
  startedAt: number;
  restarts: number;
  /** Consecutive short-lived runs: the exponent of the backoff. */
  failures: number;
  timer?: NodeJS.Timeout;
  exited?: Promise<void>;
}

/** The wait before restarting a process that has failed `failures` times in a row (1 for the first). */
export function restartDelayMs(failures: number, backoff: BackoffSettings): number {
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.max(0, failures - 1));
}

export function supervise(specs: readonly SupervisedProcess[], options: SupervisorOptions): Supervisor {
  const backoff: BackoffSettings = { ...SUPERVISOR_DEFAULTS.backoff, ...options.backoff };
  const stopTimeoutMs = options.stopTimeoutMs ?? SUPERVISOR_DEFAULTS.stopTimeoutMs;
  const env = { ...(options.env ?? process.env), SEGFLOW_LOG_FORMAT: 'json' };
  let stopping = false;
  const slots: Slot[] = specs.map((spec) => ({ spec, startedAt: 0, restarts: 0, failures: 0 }));

  const pipe = (slot: Slot, stream: 'stdout' | 'stderr', input: NodeJS.ReadableStream | null) => {
    if (input === null) return;
    createInterface({ input, crlfDelay: Infinity }).on('line', (line) => {
      if (line.trim() === '') return;
      const base = { process: slot.spec.name, stream };
      if (line.startsWith('{')) {
        try {
          const record = JSON.parse(line) as unknown;
          if (record !== null && typeof record === 'object' && !Array.isArray(record)) {
            options.onLine({ ...base, record: record as Record<string, unknown> });
            return;
          }
        } catch {
          // not JSON after all: passed on as text
        }
      }
      options.onLine({ ...base, text: line });
    });
  };

  const launch = (slot: Slot) => {
    slot.timer = undefined;
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', EXIT_WITH_PARENT, slot.spec.entry, ...(slot.spec.args ?? [])], {
      cwd: PROJECT_ROOT,
      env,
      // The IPC channel only tells the child when this process is gone (exit-with-parent.ts).
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    child.channel?.unref();
    slot.child = child;
    slot.startedAt = Date.now();
    pipe(slot, 'stdout', child.stdout);
    pipe(slot, 'stderr', child.stderr);
    slot.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        slot.child = undefined;
        const uptimeMs = Date.now() - slot.startedAt;
        options.onEvent({ process: slot.spec.name, event: stopping ? 'stopped' : 'exited', childPid: child.pid, code, signal, uptimeMs });
        resolve();
        if (stopping) return;
        slot.failures = uptimeMs >= backoff.resetAfterMs ? 1 : slot.failures + 1;
        const restartInMs = restartDelayMs(slot.failures, backoff);
        slot.restarts += 1;
        options.onEvent({ process: slot.spec.name, event: 'restarting', restartInMs, restarts: slot.restarts });
        slot.timer = setTimeout(() => launch(slot), restartInMs);
      });
    });
    child.once('error', (err) => {
      options.onLine({ process: slot.spec.name, stream: 'stderr', text: `could not start: ${err.message}` });
    });
    options.onEvent({ process: slot.spec.name, event: 'started', childPid: child.pid, restarts: slot.restarts });
  };

  for (const slot of slots) launch(slot);

  return {
    pids: () => Object.fromEntries(slots.map((s) => [s.spec.name, s.child?.pid])),
    restarts: () => Object.fromEntries(slots.map((s) => [s.spec.name, s.restarts])),
    async stop() {
      stopping = true;
      for (const slot of slots) clearTimeout(slot.timer);
      await Promise.all(
        slots.map(async (slot) => {
          const child = slot.child;
          if (child === undefined || slot.exited === undefined) return;
          child.kill('SIGTERM');
          let timer: NodeJS.Timeout | undefined;
          const timedOut = await Promise.race([
            slot.exited.then(() => false),
            new Promise<boolean>((resolve) => {
              timer = setTimeout(() => resolve(true), stopTimeoutMs);
            }),
          ]);
          clearTimeout(timer);
          if (timedOut) {
            options.onEvent({ process: slot.spec.name, event: 'killed', childPid: child.pid });
            child.kill('SIGKILL');
            await slot.exited;
          }
        }),
      );
    },
  };
}
