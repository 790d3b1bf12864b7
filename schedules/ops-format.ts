/**
 * How `npm run ops` shows what `ops-lib.ts` returns: tables and one-line reports for a person.
 * `--json` prints the same data through `toJson` instead.
 */
import { formatStale } from './asset-status.js';
import { formatTable } from '../scripts/lib/table.js';
import { formatInstant, type DagTaskState, type DeadlineOutcome } from '../workflows/dag-messages.js';
import type {
  BackfillProgress,
  BackfillRequest,
  DagStatus,
  PauseResult,
  RerunResult,
  RunSummary,
  TaskStates,
  TriggerResult,
} from './ops-lib.js';

/** `--json`: the typed data, indented; Dates become RFC 3339 strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return '-';
  if (ms < 1_000) return `${ms}ms`;
  const s = Math.round(ms / 1_000);
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Runs as a table; a running run's duration is its age at `now`. A DEADLINE column when a run has one. */
export function formatRuns(runs: readonly RunSummary[], opts: { indent?: number; now?: number } = {}): string {
  const now = opts.now ?? Date.now();
  const withDeadlines = runs.some((r) => r.deadline !== undefined);
  return formatTable(
    ['INTERVAL', 'STATE', 'DURATION', 'STARTED', ...(withDeadlines ? ['DEADLINE'] : []), 'WORKFLOW ID'],
    runs.map((r) => [
      r.interval === undefined ? '-' : `${r.interval.start} .. ${r.interval.end}`,
      r.status.toLowerCase(),
      formatDuration(r.durationMs ?? (r.status === 'RUNNING' ? now - r.startTime.getTime() : undefined)),
      formatInstant(r.startTime),
      ...(withDeadlines ? [formatDeadline(r.deadline, r.status === 'RUNNING')] : []),
      r.workflowId,
    ]),
    { indent: opts.indent ?? 0 },
  );
}

/** `due 05:00Z`, `met 05:00Z`, `MISSED 05:00Z, still running`, `MISSED 05:00Z, late 12m`; `late 3h (started after ...)` for backfills. */
export function formatDeadline(d: DeadlineOutcome | undefined, running: boolean): string {
  if (d === undefined) return '-';
  if (!d.missed) return `${running ? 'due' : 'met'} ${d.deadline}`;
  const late = d.lateByMs === undefined ? (running ? 'still running' : 'not finished') : `late ${formatDuration(d.lateByMs)}`;
  return d.alerted ? `MISSED ${d.deadline}, ${late}` : `${late} (started after ${d.deadline})`;
}

/** `ops runs`: the table, or a line saying there are none. */
export function formatRunList(dagId: string, runs: readonly RunSummary[]): string {
  return runs.length === 0 ? `no runs of ${dagId}` : formatRuns(runs);
}

export function formatStatus(statuses: readonly DagStatus[]): string {
  const lines: string[] = [];
  for (const s of statuses) {
    const schedule =
      s.schedule === undefined
        ? 'no schedule defined (manual/backfill only)'
        : `${s.schedule.cron} (${s.schedule.timezone}), overlap ${s.schedule.overlap}, catch-up ${s.schedule.catchupWindow}`;
    lines.push(`${s.dagId}`);
    lines.push(`  schedule   ${s.scheduleId}: ${schedule}`);
    if (!s.exists) {
      lines.push(`  state      ${s.schedule === undefined ? 'not scheduled' : 'MISSING on the server (run npm run schedules:apply)'}`);
    } else {
      lines.push(`  state      ${s.paused ? 'PAUSED' : 'active'}${s.note ? ` (note: ${s.note})` : ''}`);
      lines.push(`  next run   ${s.nextRun === undefined ? '-' : formatInstant(s.nextRun)}`);
    }
    if (s.runs.length === 0) lines.push('  last runs  none');
    else {
      lines.push('  last runs');
      lines.push(formatRuns(s.runs, { indent: 4 }));
    }
    lines.push(...formatStale(s.stale ?? []));
    lines.push('');
  }
  return lines.join('\n');
}

export function formatBackfillRequest(request: BackfillRequest): string {
  const { plan } = request;
  return (
    `backfill of ${plan.dagId}: ${plan.intervals.length} interval(s) ${plan.intervals[0]?.start} .. ${plan.intervals[plan.intervals.length - 1]?.end} ` +
    `requested on schedule ${plan.scheduleId} (overlap ${request.overlap})`
  );
}

export function formatBackfillProgress(p: BackfillProgress): string {
  return `  started ${p.started}/${p.expected}, running ${p.running}, completed ${p.completed}, failed ${p.failed}`;
}

/** What follows the progress lines: a note when following stopped early, then the runs. */
export function formatBackfillEnd(result: { progress: BackfillProgress; finished: boolean }): string {
  const runs = formatRuns(result.progress.runs, { indent: 2 });
  return result.finished ? runs : `  still going; the backfill continues on the server (watch it with \`npm run ops -- status\`)\n${runs}`;
}

export function formatPaused(result: PauseResult): string {
  return `${result.scheduleId} ${result.note}`;
}

export function formatTriggered(result: TriggerResult): string {
  return `started ${result.workflowId} (run ${result.runId}) for ${result.interval.start} .. ${result.interval.end}\n  ${result.url}`;
}

export function formatTasks(tasks: readonly DagTaskState[]): string {
  return formatTable(
    ['TASK', 'STATE', 'TRIES', 'DURATION', 'ERROR'],
    tasks.map((t) => [
      t.taskId,
      t.state + (t.nextAttemptAt ? ` (next ${t.nextAttemptAt})` : '') + sensingNote(t),
      String(t.attempts),
      formatDuration(t.startedAt && t.endedAt ? Date.parse(t.endedAt) - Date.parse(t.startedAt) : undefined),
      t.error ?? '',
    ]),
  );
}

export function formatTaskStates(states: TaskStates): string {
  return `${states.workflowId} (run ${states.runId}): ${states.status.toLowerCase()}, from ${states.source}\n${formatTasks(states.tasks)}`;
}

export function formatRerun(result: RerunResult): string {
  return (
    `started ${result.workflowId} (run ${result.runId}), rerun of ${result.rerunOf}\n` +
    `  skipping ${result.skipTasks.length} task(s) that succeeded: ${result.skipTasks.join(', ') || '-'}`
  );
}

/** `(poke 3, next 2026-11-26T10:05:00Z)` for a sensor that waits. */
function sensingNote(t: DagTaskState): string {
  if (t.state !== 'sensing' || t.sensor === undefined) return '';
  return ` (poke ${t.sensor.pokes}${t.sensor.nextPokeAt ? `, next ${t.sensor.nextPokeAt}` : ''})`;
}
