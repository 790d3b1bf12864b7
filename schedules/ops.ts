/**
 * npm run ops -- <command>: the operator's CLI over schedules and DAG runs.
 *
 *   status                         every DAG: schedule, paused, last runs, next run
 *   backfill <dag> --from --to     every interval in [from, to) through the schedule backfill API
 *   pause|resume <dag> --note      pause or resume a DAG's schedule
 *   trigger <dag> [--interval]     start one run now (`<dag>/<interval start>`)
 *   runs <dag>                     recent runs (visibility)
 *   tasks <workflowId>             task states of one run
 *   rerun-failed <dag> --interval  run a failed interval again, skipping what succeeded
 *
 * The functions below are the CLI's commands as a library (tests and `npm start` use them).
 */
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowExecutionInfo,
} from '@temporalio/client';
import { Command, InvalidArgumentError, Option } from 'commander';
import { fileURLToPath } from 'node:url';
import { loadConfigOrExit, type Config } from '../core/config.js';
import { type DataInterval } from '../core/dag-task.js';
import { INTERVAL_PERIOD_MS, type DagDefinition } from '../dags/dsl.js';
import { dagRegistry } from '../dags/index.js';
import {
  DAG_ID_SEARCH_ATTRIBUTE,
  LOGICAL_DATE_SEARCH_ATTRIBUTE,
  dagRunFailureDetails,
  dagRunWorkflowId,
  formatInstant,
  getTaskStatesQuery,
  skipTasksForRerun,
  type DagRunResult,
  type DagTaskState,
  type RunDagInput,
} from '../workflows/dag-messages.js';
import { createTemporalClient } from '../workers/client.js';
import { scheduleDefinitions, type DagScheduleDefinition, type OverlapPolicyName } from './definitions.js';

export interface OpsContext {
  readonly client: Client;
  readonly config: Config;
  /** Where command output goes (stdout in the CLI). */
  readonly out: (line: string) => void;
}

/** Over this many intervals a backfill needs --yes. */
export const BACKFILL_CONFIRM_ABOVE = 200;

export class OpsError extends Error {
  override name = 'OpsError';
}

// ---------- helpers ----------

export function requireDag(dagId: string): DagDefinition {
  const dag = dagRegistry.get(dagId);
  if (dag === undefined) {
    throw new OpsError(`Unknown DAG "${dagId}". Known DAGs: ${[...dagRegistry.keys()].join(', ')}.`);
  }
  return dag;
}

function scheduleDefinitionFor(ctx: OpsContext, dagId: string): DagScheduleDefinition | undefined {
  return scheduleDefinitions(ctx.config).find((d) => d.dagId === dagId);
}

/** The schedule id of a DAG: from the definitions, else the prefix + DAG id. */
export function scheduleIdFor(ctx: OpsContext, dagId: string): string {
  return scheduleDefinitionFor(ctx, dagId)?.scheduleId ?? `${ctx.config.schedules.prefix}${dagId}`;
}

export function runWorkflowId(ctx: OpsContext, dagId: string, intervalStart: string | Date): string {
  return `${ctx.config.schedules.prefix}${dagRunWorkflowId(dagId, intervalStart)}`;
}

/** Parses an RFC 3339 instant with an offset; `what` names the option in the message. */
export function parseInstantOption(text: string, what: string): number {
  const ms = /(Z|[+-]\d{2}:?\d{2})$/i.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new OpsError(`${what}: expected an RFC 3339 instant with an offset, like 2026-11-26T09:00:00Z; found "${text}".`);
  }
  return ms;
}

function assertAligned(dag: DagDefinition, ms: number, what: string): void {
  const period = INTERVAL_PERIOD_MS[dag.interval];
  if (ms % period !== 0) {
    const floor = ms - (ms % period);
    throw new OpsError(
      `${what}: ${dag.id} has ${dag.interval} intervals, which start on whole ${dag.interval === 'hourly' ? 'hours' : 'days'} (UTC); ` +
        `found ${formatInstant(ms)}. Did you mean ${formatInstant(floor)}?`,
    );
  }
}

export function intervalStartingAt(dag: DagDefinition, startMs: number): DataInterval {
  return { start: formatInstant(startMs), end: formatInstant(startMs + INTERVAL_PERIOD_MS[dag.interval]) };
}

function quote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Visibility query of a DAG's runs; scoped to the prefix's run ids when one is set. */
export function runsQuery(ctx: OpsContext, dagId: string, extra: readonly string[] = []): string {
  const parts = [`WorkflowType = 'runDag'`, `${DAG_ID_SEARCH_ATTRIBUTE.name} = ${quote(dagId)}`];
  if (ctx.config.schedules.prefix !== '') parts.push(`WorkflowId STARTS_WITH ${quote(`${ctx.config.schedules.prefix}${dagId}/`)}`);
  return [...parts, ...extra].join(' AND ');
}

export interface RunSummary {
  readonly workflowId: string;
  readonly runId: string;
  readonly status: string;
  readonly interval?: DataInterval;
  readonly startTime: Date;
  readonly closeTime?: Date;
  readonly durationMs?: number;
}

function toRunSummary(dag: DagDefinition, info: WorkflowExecutionInfo): RunSummary {
  const logical = info.typedSearchAttributes.get(LOGICAL_DATE_SEARCH_ATTRIBUTE);
  const closeTime = info.closeTime;
  return {
    workflowId: info.workflowId,
    runId: info.runId,
    status: info.status.name,
    ...(logical === undefined ? {} : { interval: intervalStartingAt(dag, logical.getTime()) }),
    startTime: info.startTime,
    ...(closeTime === undefined ? {} : { closeTime, durationMs: closeTime.getTime() - info.startTime.getTime() }),
  };
}

export async function listRuns(ctx: OpsContext, dagId: string, opts: { limit?: number; extra?: readonly string[] } = {}): Promise<RunSummary[]> {
  const dag = requireDag(dagId);
  const limit = opts.limit ?? 20;
  const runs: RunSummary[] = [];
  for await (const info of ctx.client.workflow.list({ query: runsQuery(ctx, dagId, opts.extra), pageSize: Math.min(limit * 2, 1000) })) {
    runs.push(toRunSummary(dag, info));
    if (runs.length >= limit * 4) break;
  }
  runs.sort((a, b) => b.startTime.getTime() - a.startTime.getTime());
  return runs.slice(0, limit);
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

function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd());
}

function runRows(runs: readonly RunSummary[], now = Date.now()): string[] {
  return table([
    ['INTERVAL', 'STATE', 'DURATION', 'STARTED', 'WORKFLOW ID'],
    ...runs.map((r) => [
      r.interval === undefined ? '-' : `${r.interval.start} .. ${r.interval.end}`,
      r.status.toLowerCase(),
      formatDuration(r.durationMs ?? (r.status === 'RUNNING' ? now - r.startTime.getTime() : undefined)),
      formatInstant(r.startTime),
      r.workflowId,
    ]),
  ]);
}

// ---------- status ----------

export interface DagStatus {
  readonly dagId: string;
  readonly scheduleId: string;
  readonly schedule?: { cron: string; timezone: string; overlap: OverlapPolicyName; catchupWindow: string };
  readonly exists: boolean;
  readonly paused?: boolean;
  readonly note?: string;
  readonly nextRun?: Date;
  readonly runs: readonly RunSummary[];
}

export async function dagStatuses(ctx: OpsContext, opts: { dagIds?: readonly string[]; runs?: number; all?: boolean } = {}): Promise<DagStatus[]> {
  const defs = scheduleDefinitions(ctx.config);
  const scheduled = defs.map((d) => d.dagId).filter((id) => dagRegistry.has(id));
  const ids = opts.dagIds ?? (opts.all ? [...new Set([...scheduled, ...dagRegistry.keys()])] : scheduled);
  const statuses: DagStatus[] = [];
  for (const dagId of ids) {
    requireDag(dagId);
    const def = defs.find((d) => d.dagId === dagId);
    const scheduleId = def?.scheduleId ?? `${ctx.config.schedules.prefix}${dagId}`;
    let described: Awaited<ReturnType<ReturnType<Client['schedule']['getHandle']>['describe']>> | undefined;
    try {
      described = await ctx.client.schedule.getHandle(scheduleId).describe();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
    const runs = await listRuns(ctx, dagId, { limit: opts.runs ?? 5 });
    statuses.push({
      dagId,
      scheduleId,
      ...(def === undefined ? {} : { schedule: { cron: def.cron, timezone: def.timezone, overlap: def.overlap, catchupWindow: def.catchupWindow } }),
      exists: described !== undefined,
      ...(described === undefined
        ? {}
        : {
            paused: described.state.paused,
            ...(described.state.note === undefined ? {} : { note: described.state.note }),
            ...(described.info.nextActionTimes[0] === undefined ? {} : { nextRun: described.info.nextActionTimes[0] }),
          }),
      runs,
    });
  }
  return statuses;
}

export function formatStatus(statuses: readonly DagStatus[]): string {
  const lines: string[] = [];
  for (const s of statuses) {
    const schedule = s.schedule === undefined ? 'no schedule defined (manual/backfill only)' : `${s.schedule.cron} (${s.schedule.timezone}), overlap ${s.schedule.overlap}, catch-up ${s.schedule.catchupWindow}`;
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
      lines.push(...runRows(s.runs).map((l) => `    ${l}`));
    }
    lines.push('');
  }
  return lines.join('\n');
}

// ---------- backfill ----------

export interface BackfillPlan {
  readonly dagId: string;
  readonly scheduleId: string;
  readonly intervals: readonly DataInterval[];
  /** The range handed to the schedule's backfill: every nominal time that maps into [from, to). */
  readonly range: { readonly start: Date; readonly end: Date };
}

export function planBackfill(ctx: OpsContext, dagId: string, from: string | undefined, to: string | undefined, opts: { yes?: boolean } = {}): BackfillPlan {
  const dag = requireDag(dagId);
  if (from === undefined || to === undefined) {
    throw new OpsError('A backfill needs both --from and --to (an unbounded backfill is refused).');
  }
  const fromMs = parseInstantOption(from, '--from');
  const toMs = parseInstantOption(to, '--to');
  if (toMs <= fromMs) throw new OpsError(`--to (${to}) must be after --from (${from}); the range [from, to) is empty or reversed.`);
  assertAligned(dag, fromMs, '--from');
  assertAligned(dag, toMs, '--to');
  if (toMs > Date.now()) throw new OpsError(`--to (${to}) is in the future: only finished intervals can be backfilled.`);
  const period = INTERVAL_PERIOD_MS[dag.interval];
  const count = (toMs - fromMs) / period;
  if (count > BACKFILL_CONFIRM_ABOVE && !opts.yes) {
    throw new OpsError(`That is ${count} ${dag.interval} runs of ${dagId} (more than ${BACKFILL_CONFIRM_ABOVE}). Check the range, then add --yes to go ahead.`);
  }
  const intervals = Array.from({ length: count }, (_, i) => intervalStartingAt(dag, fromMs + i * period));
  // A fire at nominal time N processes the interval ending at the boundary at or before N, so the
  // fires for [from, to) are the ones in [from + period, to + period). Schedules fire on whole
  // minutes, so a second's margin on either side makes the range's own inclusivity irrelevant.
  return {
    dagId,
    scheduleId: scheduleIdFor(ctx, dagId),
    intervals,
    range: { start: new Date(fromMs + period - 1_000), end: new Date(toMs + period - 1_000) },
  };
}

export interface BackfillProgress {
  readonly expected: number;
  readonly started: number;
  readonly running: number;
  readonly completed: number;
  readonly failed: number;
  readonly runs: readonly RunSummary[];
}

export async function backfillProgress(ctx: OpsContext, plan: BackfillPlan, since: Date): Promise<BackfillProgress> {
  const first = plan.intervals[0]?.start as string;
  const end = plan.intervals[plan.intervals.length - 1]?.end as string;
  const wanted = new Set(plan.intervals.map((i) => i.start));
  // Half-open on the range end: `<=` on an instant that equals a stored datetime is not reliable in every visibility store.
  const runs = await listRuns(ctx, plan.dagId, {
    limit: plan.intervals.length * 3,
    extra: [`LogicalDate >= ${quote(first)}`, `LogicalDate < ${quote(end)}`, `StartTime >= ${quote(since.toISOString())}`],
  });
  // The newest run of each interval counts.
  const byInterval = new Map<string, RunSummary>();
  for (const r of runs) {
    if (r.interval !== undefined && wanted.has(r.interval.start) && !byInterval.has(r.interval.start)) byInterval.set(r.interval.start, r);
  }
  const latest = [...byInterval.values()].sort((a, b) => (a.interval?.start ?? '').localeCompare(b.interval?.start ?? ''));
  return {
    expected: plan.intervals.length,
    started: latest.length,
    running: latest.filter((r) => r.status === 'RUNNING').length,
    completed: latest.filter((r) => r.status === 'COMPLETED').length,
    failed: latest.filter((r) => r.status !== 'RUNNING' && r.status !== 'COMPLETED').length,
    runs: latest,
  };
}

export async function backfill(
  ctx: OpsContext,
  dagId: string,
  opts: { from?: string; to?: string; yes?: boolean; overlap?: OverlapPolicyName; wait?: boolean; timeoutMs?: number; pollMs?: number },
): Promise<{ plan: BackfillPlan; progress?: BackfillProgress }> {
  const plan = planBackfill(ctx, dagId, opts.from, opts.to, { yes: opts.yes ?? false });
  const handle = ctx.client.schedule.getHandle(plan.scheduleId);
  try {
    await handle.describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) {
      throw new OpsError(`Schedule "${plan.scheduleId}" does not exist; run \`npm run schedules:apply\` first (backfills go through the schedule).`);
    }
    throw err;
  }
  // Visibility times come from the server; allow for a client clock a little ahead of it.
  const since = new Date(Date.now() - 60_000);
  const overlap = opts.overlap ?? 'BUFFER_ALL';
  await handle.backfill({ start: plan.range.start, end: plan.range.end, overlap: ScheduleOverlapPolicy[overlap] });
  ctx.out(`backfill of ${dagId}: ${plan.intervals.length} interval(s) ${plan.intervals[0]?.start} .. ${plan.intervals[plan.intervals.length - 1]?.end} requested on schedule ${plan.scheduleId} (overlap ${overlap})`);
  if (opts.wait === false) return { plan };

  const deadline = Date.now() + (opts.timeoutMs ?? 6 * 3_600_000);
  let lastLine = '';
  let progress: BackfillProgress | undefined;
  for (;;) {
    progress = await backfillProgress(ctx, plan, since);
    const line = `  started ${progress.started}/${progress.expected}, running ${progress.running}, completed ${progress.completed}, failed ${progress.failed}`;
    if (line !== lastLine) ctx.out(line);
    lastLine = line;
    if (progress.started === progress.expected && progress.running === 0) break;
    if (Date.now() > deadline) {
      ctx.out('  still going; the backfill continues on the server (watch it with `npm run ops -- status`)');
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, opts.pollMs ?? 2_000));
  }
  ctx.out(runRows(progress.runs).map((l) => `  ${l}`).join('\n'));
  return { plan, progress };
}

// ---------- pause / resume ----------

export async function setPaused(ctx: OpsContext, dagId: string, paused: boolean, note: string | undefined): Promise<void> {
  requireDag(dagId);
  const scheduleId = scheduleIdFor(ctx, dagId);
  const handle = ctx.client.schedule.getHandle(scheduleId);
  const text = `${paused ? 'paused' : 'resumed'} via ops CLI${note ? `: ${note}` : ''}`;
  try {
    if (paused) await handle.pause(text);
    else await handle.unpause(text);
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw new OpsError(`Schedule "${scheduleId}" does not exist; run \`npm run schedules:apply\` first.`);
    throw err;
  }
  ctx.out(`${scheduleId} ${text}`);
}

// ---------- trigger / rerun ----------

export async function startDagRun(
  ctx: OpsContext,
  dagId: string,
  interval: DataInterval,
  extra: Pick<RunDagInput, 'skipTasks' | 'rerunOf'> = {},
): Promise<{ workflowId: string; runId: string }> {
  const workflowId = runWorkflowId(ctx, dagId, interval.start);
  const input: RunDagInput = { dagId, interval, uiBaseUrl: ctx.config.temporal.uiUrl, ...extra };
  try {
    const handle = await ctx.client.workflow.start('runDag', {
      workflowId,
      taskQueue: ctx.config.temporal.taskQueue,
      args: [input],
      typedSearchAttributes: [
        { key: DAG_ID_SEARCH_ATTRIBUTE, value: dagId },
        { key: LOGICAL_DATE_SEARCH_ATTRIBUTE, value: new Date(interval.start) },
      ],
      staticSummary: `${dagId} ${interval.start} .. ${interval.end}${extra.rerunOf ? ` (rerun of ${extra.rerunOf})` : ' (manual)'}`,
    });
    return { workflowId, runId: handle.firstExecutionRunId };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new OpsError(`${workflowId} is already running; watch it with \`npm run ops -- tasks ${workflowId}\`.`);
    }
    throw err;
  }
}

export async function trigger(ctx: OpsContext, dagId: string, opts: { interval?: string } = {}): Promise<{ workflowId: string; runId: string; interval: DataInterval }> {
  const dag = requireDag(dagId);
  const period = INTERVAL_PERIOD_MS[dag.interval];
  let startMs: number;
  if (opts.interval === undefined) {
    const now = Date.now();
    startMs = now - (now % period) - period; // the last complete interval
  } else {
    startMs = parseInstantOption(opts.interval, '--interval');
    assertAligned(dag, startMs, '--interval');
  }
  const interval = intervalStartingAt(dag, startMs);
  const started = await startDagRun(ctx, dagId, interval);
  ctx.out(`started ${started.workflowId} (run ${started.runId}) for ${interval.start} .. ${interval.end}`);
  ctx.out(`  ${ctx.config.temporal.uiUrl}/namespaces/${encodeURIComponent(ctx.config.temporal.namespace)}/workflows/${encodeURIComponent(started.workflowId)}`);
  return { ...started, interval };
}

/** Task states of a run: live from the query while it runs, from its result or failure once closed. */
export async function taskStates(ctx: OpsContext, workflowId: string): Promise<{ status: string; runId: string; tasks: DagTaskState[]; source: string }> {
  const handle = ctx.client.workflow.getHandle<(input: RunDagInput) => Promise<DagRunResult>>(workflowId);
  let description;
  try {
    description = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new OpsError(`No workflow "${workflowId}". Find run ids with \`npm run ops -- runs <dag>\`.`);
    throw err;
  }
  const status = description.status.name;
  if (status === 'RUNNING') {
    return { status, runId: description.runId, tasks: await handle.query(getTaskStatesQuery), source: 'live query' };
  }
  try {
    const result = await handle.result();
    return { status, runId: description.runId, tasks: [...result.tasks], source: 'run result' };
  } catch (err) {
    const details = dagRunFailureDetails(err);
    if (details !== undefined) return { status, runId: description.runId, tasks: [...details.tasks], source: 'failure details' };
  }
  // Terminated or timed out: only a worker can still answer for the closed run.
  return { status, runId: description.runId, tasks: await handle.query(getTaskStatesQuery), source: 'query of the closed run' };
}

export function formatTasks(tasks: readonly DagTaskState[]): string {
  return table([
    ['TASK', 'STATE', 'TRIES', 'DURATION', 'ERROR'],
    ...tasks.map((t) => [
      t.taskId,
      t.state + (t.nextAttemptAt ? ` (next ${t.nextAttemptAt})` : ''),
      String(t.attempts),
      formatDuration(t.startedAt && t.endedAt ? Date.parse(t.endedAt) - Date.parse(t.startedAt) : undefined),
      t.error ?? '',
    ]),
  ]).join('\n');
}

export async function rerunFailed(ctx: OpsContext, dagId: string, intervalStart: string): Promise<{ workflowId: string; runId: string; skipTasks: string[] }> {
  const dag = requireDag(dagId);
  const startMs = parseInstantOption(intervalStart, '--interval');
  assertAligned(dag, startMs, '--interval');
  const workflowId = runWorkflowId(ctx, dagId, new Date(startMs));
  const previous = await taskStates(ctx, workflowId);
  if (previous.status === 'RUNNING') throw new OpsError(`${workflowId} is still running; wait for it to finish.`);
  if (previous.status === 'COMPLETED') throw new OpsError(`${workflowId} succeeded; nothing to rerun (use \`trigger --interval\` to run it again in full).`);
  const skipTasks = skipTasksForRerun(dag, previous.tasks);
  const started = await startDagRun(ctx, dagId, intervalStartingAt(dag, startMs), { skipTasks, rerunOf: previous.runId });
  ctx.out(`started ${started.workflowId} (run ${started.runId}), rerun of ${previous.runId}`);
  ctx.out(`  skipping ${skipTasks.length} task(s) that succeeded: ${skipTasks.join(', ') || '-'}`);
  return { ...started, skipTasks };
}

// ---------- CLI ----------

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a whole number above 0, found ${JSON.stringify(v)}`);
  return n;
}

export function buildProgram(getCtx: () => Promise<OpsContext>): Command {
  const program = new Command('ops')
    .description('Operate segflow: schedules, backfills and DAG runs on the configured Temporal namespace.')
    .showHelpAfterError();

  const withCtx = <A extends unknown[]>(fn: (ctx: OpsContext, ...args: A) => Promise<void>) =>
    async (...args: A) => fn(await getCtx(), ...args);

  program
    .command('status')
    .description('Each DAG: its schedule, paused or not, the last runs (interval, state, duration) and the next run.')
    .argument('[dags...]', 'DAG ids (default: every scheduled DAG)')
    .option('--runs <n>', 'runs to show per DAG', positiveInt, 5)
    .option('--all', 'every registered DAG, scheduled or not (examples, benchmarks)')
    .action(withCtx(async (ctx, dags: string[], o: { runs: number; all?: boolean }) => {
      ctx.out(formatStatus(await dagStatuses(ctx, { ...(dags.length > 0 ? { dagIds: dags } : {}), runs: o.runs, all: o.all ?? false })));
    }));

  program
    .command('backfill')
    .description('Run every interval in [--from, --to) through the schedule backfill API, each with its own data interval; shows progress.')
    .argument('<dag>', 'DAG id, e.g. hourly_pipeline')
    .option('--from <start>', 'first interval start, RFC 3339 (e.g. 2026-11-26T06:00:00Z)')
    .option('--to <end>', 'end of the range, exclusive (e.g. 2026-11-26T09:00:00Z)')
    .addOption(new Option('--overlap <policy>', 'how backfilled runs overlap each other').choices(['BUFFER_ALL', 'ALLOW_ALL', 'SKIP', 'BUFFER_ONE']).default('BUFFER_ALL'))
    .option('--yes', `confirm a backfill of more than ${BACKFILL_CONFIRM_ABOVE} intervals`)
    .option('--no-wait', 'return once requested, without following progress')
    .option('--timeout <minutes>', 'stop following progress after this long (the backfill goes on)', positiveInt)
    .action(withCtx(async (ctx, dag: string, o: { from?: string; to?: string; overlap: OverlapPolicyName; yes?: boolean; wait: boolean; timeout?: number }) => {
      await backfill(ctx, dag, {
        ...(o.from === undefined ? {} : { from: o.from }),
        ...(o.to === undefined ? {} : { to: o.to }),
        overlap: o.overlap,
        yes: o.yes ?? false,
        wait: o.wait,
        ...(o.timeout === undefined ? {} : { timeoutMs: o.timeout * 60_000 }),
      });
    }));

  for (const [name, paused] of [['pause', true], ['resume', false]] as const) {
    program
      .command(name)
      .description(`${paused ? 'Pause' : 'Resume'} a DAG's schedule; the note shows in the UI and in \`ops status\`.`)
      .argument('<dag>', 'DAG id')
      .option('--note <text>', 'why (who, ticket)')
      .action(withCtx(async (ctx, dag: string, o: { note?: string }) => setPaused(ctx, dag, paused, o.note)));
  }

  program
    .command('trigger')
    .description('Start one run of a DAG now, with workflow id <dag>/<interval start>.')
    .argument('<dag>', 'DAG id')
    .option('--interval <start>', 'interval start, RFC 3339 (default: the last complete interval)')
    .action(withCtx(async (ctx, dag: string, o: { interval?: string }) => {
      await trigger(ctx, dag, o.interval === undefined ? {} : { interval: o.interval });
    }));

  program
    .command('runs')
    .description('Recent runs of a DAG, newest first (from visibility: DagId search attribute).')
    .argument('<dag>', 'DAG id')
    .option('--limit <n>', 'how many', positiveInt, 20)
    .addOption(new Option('--status <status>', 'only runs in this state').choices(['Running', 'Completed', 'Failed', 'Canceled', 'Terminated', 'TimedOut']))
    .action(withCtx(async (ctx, dag: string, o: { limit: number; status?: string }) => {
      const runs = await listRuns(ctx, dag, { limit: o.limit, ...(o.status ? { extra: [`ExecutionStatus = '${o.status}'`] } : {}) });
      ctx.out(runs.length === 0 ? `no runs of ${dag}` : runRows(runs).join('\n'));
    }));

  program
    .command('tasks')
    .description("Task states of one run (Airflow's task instances): live while it runs, from its result once closed.")
    .argument('<workflowId>', 'e.g. hourly_pipeline/2026-11-26T09:00:00Z')
    .action(withCtx(async (ctx, workflowId: string) => {
      const r = await taskStates(ctx, workflowId);
      ctx.out(`${workflowId} (run ${r.runId}): ${r.status.toLowerCase()}, from ${r.source}`);
      ctx.out(formatTasks(r.tasks));
    }));

  program
    .command('rerun-failed')
    .description('Run a failed interval again as a new run of the same workflow id, skipping tasks that succeeded and are not downstream of a failure.')
    .argument('<dag>', 'DAG id')
    .requiredOption('--interval <start>', 'interval start of the failed run, RFC 3339')
    .action(withCtx(async (ctx, dag: string, o: { interval: string }) => {
      await rerunFailed(ctx, dag, o.interval);
    }));

  return program;
}

async function main(): Promise<void> {
  let client: Client | undefined;
  const program = buildProgram(async () => {
    const config = loadConfigOrExit();
    client = await createTemporalClient(config);
    return { client, config, out: (line) => console.log(line) };
  });
  try {
    await program.parseAsync();
  } finally {
    await client?.connection.close();
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(`ops: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(err instanceof OpsError ? 2 : 1);
  });
}
