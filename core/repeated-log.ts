/**
 * One cause, one report. A warning that every customer or message hits in turn (no model yet, a
 * store that is down) is logged in full the first time; later occurrences within the window go
 * to debug, so the JSON file still holds each one, and a summary at the first one's level says
 * how many there were. A cause quiet for a whole window is forgotten and logged in full again.
 */
import type { Logger } from './logger.js';

export type RepeatedLevel = 'info' | 'warn' | 'error';

export interface RepeatedLogOptions {
  /** How often a recurring cause is summarized, and how long a quiet cause is remembered. */
  windowMs?: number;
  now?: () => number;
  /** Write due summaries on a timer (unref'd); off in tests that drive flush() with a fake clock. */
  timer?: boolean;
}

export interface RepeatedLog {
  /**
   * Logs `msg` for `cause`, or counts it when this cause was already logged in the current window.
   * `via` is the logger for the line itself (a child with the unit of work's ids); summaries use the base.
   */
  log(level: RepeatedLevel, cause: string, fields: object, msg: string, via?: Logger): void;
  /** Writes the summaries whose window has passed; with `all`, every pending one (at shutdown). */
  flush(all?: boolean): void;
  /** Stops the timer and writes every pending summary. */
  close(): void;
}

interface Cause {
  level: RepeatedLevel;
  msg: string;
  since: number;
  repeated: number;
}

export const REPEAT_WINDOW_MS = 60_000;
/** Causes tracked at once; past this (every line a cause of its own) lines are logged as they come. */
const MAX_CAUSES = 1_000;

export function createRepeatedLog(logger: Logger, options: RepeatedLogOptions = {}): RepeatedLog {
  const windowMs = options.windowMs ?? REPEAT_WINDOW_MS;
  const now = options.now ?? Date.now;
  const causes = new Map<string, Cause>();
  let timer: NodeJS.Timeout | undefined;

  function summarize(cause: string, entry: Cause, at: number): void {
    const seconds = Math.max(1, Math.round((at - entry.since) / 1000));
    logger[entry.level]({ cause, repeated: entry.repeated, seconds }, `${entry.msg} (${entry.repeated} more in the last ${seconds} s)`);
    entry.repeated = 0;
    entry.since = at;
  }

  function flush(all = false): void {
    const at = now();
    for (const [cause, entry] of causes) {
      if (!all && at - entry.since < windowMs) continue;
      if (entry.repeated > 0) summarize(cause, entry, at);
      else causes.delete(cause);
    }
    if (causes.size === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  }

  return {
    log(level, cause, fields, msg, via = logger) {
      const at = now();
      const entry = causes.get(cause);
      if (entry === undefined) {
        if (causes.size >= MAX_CAUSES) {
          via[level](fields, msg);
          return;
        }
        causes.set(cause, { level, msg, since: at, repeated: 0 });
        via[level](fields, msg);
        if (options.timer !== false && timer === undefined) {
          // Checked several times a window, so a summary is written soon after its window ends.
          timer = setInterval(() => flush(), Math.max(1, Math.floor(windowMs / 6)));
          timer.unref();
        }
        return;
      }
      entry.repeated += 1;
      via.debug({ ...fields, repeatOf: cause }, msg);
      if (at - entry.since >= windowMs) summarize(cause, entry, at);
    },
    flush,
    close() {
      flush(true);
      clearInterval(timer);
      timer = undefined;
    },
  };
}
