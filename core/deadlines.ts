/**
 * Deadlines of DAG runs and tasks: when a data interval's work must be done, and the alert raised
 * when it is not. Pure and deterministic (the workflow computes the instant from its interval).
 */
import { alertDedupKey, temporalUiLinks, type Alert, type AlertSeverity } from './alerts.js';
import { formatInstant, parseDuration, type Duration } from './time.js';

/**
 * `after`: this long after the data interval's end (`'30m'`). `at`: the first `HH:MM` in
 * `timezone` (IANA, UTC when absent) at or after the interval's end, e.g. 05:00 the next morning.
 */
export type DeadlineSpec =
  | { readonly after: Duration | number; readonly severity?: AlertSeverity }
  | { readonly at: string; readonly timezone?: string; readonly severity?: AlertSeverity };

export const TIME_OF_DAY_PATTERN = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** Problems with a deadline, worded for DagValidationError; empty when it is valid. */
export function deadlineProblems(spec: DeadlineSpec): string[] {
  if ('after' in spec) {
    const ms = typeof spec.after === 'number' ? spec.after : parseDuration(spec.after);
    return Number.isFinite(ms) && ms >= 0 ? [] : [`after must be a duration like 30m or 2h, found ${JSON.stringify(spec.after)}`];
  }
  const problems: string[] = [];
  if (!TIME_OF_DAY_PATTERN.test(spec.at)) problems.push(`at must be a time of day HH:MM (24 h), found ${JSON.stringify(spec.at)}`);
  if (spec.timezone !== undefined && !isTimeZone(spec.timezone)) {
    problems.push(`timezone must be an IANA time zone such as Europe/Berlin, found ${JSON.stringify(spec.timezone)}`);
  }
  return problems;
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Epoch ms of the deadline of an interval ending at `intervalEndMs`. */
export function deadlineInstant(spec: DeadlineSpec, intervalEndMs: number, defaultZone = 'UTC'): number {
  if ('after' in spec) return intervalEndMs + (typeof spec.after === 'number' ? spec.after : parseDuration(spec.after));
  const match = TIME_OF_DAY_PATTERN.exec(spec.at);
  if (match === null) return Number.NaN;
  const zone = spec.timezone ?? defaultZone;
  const minutes = Number(match[1]) * 60 + Number(match[2]);
  const day = localDate(intervalEndMs, zone);
  // The interval's local day, then the next ones (a DST gap can skip a time of day once).
  for (let d = 0; d < 3; d++) {
    const candidate = zonedInstant(day.year, day.month, day.day + d, minutes, zone);
    if (candidate >= intervalEndMs) return candidate;
  }
  return Number.NaN;
}

function localDate(ms: number, zone: string): { year: number; month: number; day: number } {
  const parts = zoneParts(ms, zone);
  return { year: parts.year, month: parts.month, day: parts.day };
}

function zoneParts(ms: number, zone: string): { year: number; month: number; day: number; hour: number; minute: number } {
  const formatted = new Intl.DateTimeFormat('en-US', {
    timeZone: zone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
  }).formatToParts(new Date(ms));
  const get = (type: string): number => Number(formatted.find((p) => p.type === type)?.value);
  return { year: get('year'), month: get('month'), day: get('day'), hour: get('hour'), minute: get('minute') };
}

/** The instant whose wall clock in `zone` reads the given local date and minute of day. */
function zonedInstant(year: number, month: number, day: number, minuteOfDay: number, zone: string): number {
  const wall = Date.UTC(year, month - 1, day, 0, minuteOfDay);
  let guess = wall;
  // Two corrections settle the zone's offset, also across a DST change.
  for (let i = 0; i < 2; i++) {
    const p = zoneParts(guess, zone);
    const shown = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute);
    guess += wall - shown;
  }
  return guess;
}

/** `1h05m`, `12m`, `40s`: how late, for people. */
export function formatLateness(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 === 0 ? '' : `${String(s % 60).padStart(2, '0')}s`}`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export interface DeadlineMissedAlertParams {
  readonly dagId: string;
  /** Absent for the run's own deadline. */
  readonly taskId?: string;
  readonly interval: { readonly start: string; readonly end: string };
  readonly deadline: number;
  readonly severity: AlertSeverity;
  /** What is still going, for the message: `3/9 tasks succeeded, 2 running`. */
  readonly progress: string;
  readonly workflow: { readonly namespace: string; readonly workflowId: string; readonly runId: string };
  readonly uiBaseUrl?: string;
  readonly occurredAt: string;
}

/** Kind `dag_deadline_missed`; one per DAG (or task) and interval, whatever the number of attempts. */
export function deadlineMissedAlert(params: DeadlineMissedAlertParams): Alert {
  const { dagId, taskId, interval, workflow } = params;
  const what = taskId === undefined ? `DAG ${dagId}` : `task ${taskId} of DAG ${dagId}`;
  const deadline = formatInstant(params.deadline);
  return {
    kind: 'dag_deadline_missed',
    severity: params.severity,
    summary: `${what} missed its deadline ${deadline} for ${interval.start}..${interval.end}`,
    message: `${what} is still running at its deadline ${deadline} (${params.progress}). The run keeps going; its result says how late it finished.`,
    dedupKey: alertDedupKey('dag_deadline_missed', dagId, taskId ?? 'run', interval.start),
    occurredAt: params.occurredAt,
    dagId,
    ...(taskId === undefined ? {} : { taskIds: [taskId] }),
    interval,
    workflow,
    links: temporalUiLinks(params.uiBaseUrl, workflow),
  };
}
