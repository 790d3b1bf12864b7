/**
 * Bad input reported as counts, not one line per message: invalid messages are tallied per reason
 * code, and one line per interval says how many there were of each. The first message of a quiet
 * period is logged at once with its reasons (so a new problem shows without waiting), the rest go to
 * debug and into the next summary.
 */
import type { Logger } from './logger.js';

export interface ReasonTallyOptions {
  /** Length of a summary interval. */
  intervalMs?: number;
  now?: () => number;
  /** Write summaries on a timer (unref'd); off in tests that drive flush() themselves. */
  timer?: boolean;
}

export interface ReasonTally {
  /** Counts one invalid message with its reason codes; `fields` are logged for the first of an interval only. */
  add(codes: readonly string[], fields: object): void;
  /** Writes the summary of the messages counted since the last one, if any. */
  flush(): void;
  close(): void;
}

export const REASON_TALLY_INTERVAL_MS = 60_000;

export function createReasonTally(logger: Logger, msg: string, options: ReasonTallyOptions = {}): ReasonTally {
  const intervalMs = options.intervalMs ?? REASON_TALLY_INTERVAL_MS;
  const now = options.now ?? Date.now;
  let since = 0;
  let messages = 0;
  let counts: Record<string, number> = {};
  let timer: NodeJS.Timeout | undefined;

  function flush(): void {
    if (messages > 0) {
      const seconds = Math.max(1, Math.round((now() - since) / 1000));
      logger.warn({ messages, reasons: counts, seconds }, `${msg}: ${messages} in the last ${seconds} s`);
    }
    messages = 0;
    counts = {};
    if (timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  }

  return {
    add(codes, fields) {
      const first = messages === 0;
      if (first) since = now();
      messages += 1;
      for (const code of new Set(codes)) counts[code] = (counts[code] ?? 0) + 1;
      if (first) {
        logger.warn(
          { ...fields, reasons: codes },
          `${msg} (first of this interval; counts follow every ${Math.round(intervalMs / 1000)} s)`,
        );
        if (options.timer !== false) {
          timer = setInterval(flush, intervalMs);
          timer.unref();
        }
      } else {
        logger.debug({ ...fields, reasons: codes }, msg);
      }
      if (options.timer === false && now() - since >= intervalMs) flush();
    },
    flush,
    close: flush,
  };
}
