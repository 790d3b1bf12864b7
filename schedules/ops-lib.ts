/**
 * The operations behind `npm run ops`, over the Temporal client: DAG status, backfill, pause and
 * resume, trigger, recent runs, task states and rerun of a failed interval. Each returns typed
 * data and throws OpsError for a mistake of the operator's; printing is `ops-format.ts`'s, the
 * command line `ops.ts`'s. Tests, `npm start` and the chaos suite call these directly.
 */
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowExecutionInfo,
} from '@temporalio/client';
import type { Config } from '../core/config.js';
import { workflowUiUrl } from '../core/temporal-connection.js';
import { type DataInterval } from '../core/dag-task.js';
import { INTERVAL_PERIOD_MS, type DagDefinition } from '../dags/dsl.js';
import { dagRegistry } from '../dags/index.js';
import {
  DAG_ID_SEARCH_ATTRIBUTE,
  DEADLINE_MEMO_KEY,
  LOGICAL_DATE_SEARCH_ATTRIBUTE,
  dagRunFailureDetails,
  dagRunWorkflowId,
  formatInstant,
  getTaskStatesQuery,
  skipTasksForRerun,
  type DagRunResult,
  type DagTaskState,
  type DeadlineOutcome,
  type RunDagInput,
} from '../workflows/dag-messages.js';
import { scheduleDefinitions, type DagScheduleDefinition, type OverlapPolicyName } from './definitions.js';
import { staleIntervals, type StaleInterval } from './asset-status.js';

export interface OpsContext {
  readonly client: Client;
  readonly config: Config;
}

/** Over this many intervals a backfill needs --yes. */
export const BACKFILL_CONFIRM_ABOVE = 200;

/** A request the operator can correct (unknown DAG, bad range, missing schedule): the CLI exits 2. */
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

// ---------- runs ----------

export interface RunSummary {
  readonly workflowId: string;
  readonly runId: string;
  readonly status: string;
  readonly interval?: DataInterval;
  readonly startTime: Date;
  readonly closeTime?: Date;
  readonly durationMs?: number;
  /** The run's deadline and how it went, for DAGs that declare one (from the run's memo). */
  readonly deadline?: DeadlineOutcome;
}

function toRunSummary(dag: DagDefinition, info: WorkflowExecutionInfo): RunSummary {
  const logical = info.typedSearchAttributes.get(LOGICAL_DATE_SEARCH_ATTRIBUTE);
  const closeTime = info.closeTime;
  const deadline = info.memo?.[DEADLINE_MEMO_KEY] as DeadlineOutcome | undefined;
  return {
    workflowId: info.workflowId,
    runId: info.runId,
    status: info.status.name,
    ...(logical === undefined ? {} : { interval: intervalStartingAt(dag, logical.getTime()) }),
    startTime: info.startTime,
    ...(closeTime === undefined ? {} : { closeTime, durationMs: closeTime.getTime() - info.startTime.getTime() }),
    ...(deadline === undefined ? {} : { deadline }),
  };
}

/** A DAG's runs, newest first. */
export async function listRuns(
  ctx: OpsContext,
  dagId: string,
  opts: { limit?: number; extra?: readonly string[] } = {},
): Promise<RunSummary[]> {
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
  /** For DAGs triggered by data: intervals whose input landed again after their run started. */
  readonly stale?: readonly StaleInterval[];
}

export async function dagStatuses(
  ctx: OpsContext,
  opts: { dagIds?: readonly string[]; runs?: number; all?: boolean } = {},
): Promise<DagStatus[]> {
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
    const stale =
      dagRegistry.get(dagId)?.triggeredBy === undefined ? undefined : await staleIntervals(ctx.client, ctx.config.schedules.prefix, dagId);
    statuses.push({
      dagId,
      scheduleId,
      ...(def === undefined
        ? {}
        : { schedule: { cron: def.cron, timezone: def.timezone, overlap: def.overlap, catchupWindow: def.catchupWindow } }),
      exists: described !== undefined,
      ...(described === undefined
        ? {}
        : {
            paused: described.state.paused,
            ...(described.state.note === undefined ? {} : { note: described.state.note }),
            ...(described.info.nextActionTimes[0] === undefined ? {} : { nextRun: described.info.nextActionTimes[0] }),
          }),
      runs,
      ...(stale === undefined ? {} : { stale }),
    });
  }
  return statuses;
}

// ---------- backfill ----------

export interface BackfillPlan {
  readonly dagId: string;
  readonly scheduleId: string;
  readonly intervals: readonly DataInterval[];
  /** The range handed to the schedule's backfill: every nominal time that maps into [from, to). */
  readonly range: { readonly start: Date; readonly end: Date };
}

export function planBackfill(
  ctx: OpsContext,
  dagId: string,
  from: string | undefined,
  to: string | undefined,
  opts: { yes?: boolean } = {},
): BackfillPlan {
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
    throw new OpsError(
      `That is ${count} ${dag.interval} runs of ${dagId} (more than ${BACKFILL_CONFIRM_ABOVE}). Check the range, then add --yes to go ahead.`,
    );
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

export interface BackfillRequest {
  readonly plan: BackfillPlan;
  readonly overlap: OverlapPolicyName;
  /** Runs started from this instant on count as the backfill's. */
  readonly since: Date;
}

/** Plans a backfill and hands it to the DAG's schedule. */
export async function requestBackfill(
  ctx: OpsContext,
  dagId: string,
  opts: { from?: string; to?: string; yes?: boolean; overlap?: OverlapPolicyName },
): Promise<BackfillRequest> {
  const plan = planBackfill(ctx, dagId, opts.from, opts.to, { yes: opts.yes ?? false });
  const handle = ctx.client.schedule.getHandle(plan.scheduleId);
  try {
    await handle.describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) {
      throw new OpsError(
        `Schedule "${plan.scheduleId}" does not exist; run \`npm run schedules:apply\` first (backfills go through the schedule).`,
      );
    }
    throw err;
  }
  // Visibility times come from the server; allow for a client clock a little ahead of it.
  const since = new Date(Date.now() - 60_000);
  const overlap = opts.overlap ?? 'BUFFER_ALL';
  await handle.backfill({ start: plan.range.start, end: plan.range.end, overlap: ScheduleOverlapPolicy[overlap] });
  return { plan, overlap, since };
}

/**
 * Polls a requested backfill until every interval has run, or until the timeout (the backfill
 * goes on on the server; `finished` is false then). `onProgress` sees every poll.
 */
export async function followBackfill(
  ctx: OpsContext,
  request: BackfillRequest,
  opts: { timeoutMs?: number; pollMs?: number; onProgress?: (progress: BackfillProgress) => void } = {},
): Promise<{ progress: BackfillProgress; finished: boolean }> {
  const deadline = Date.now() + (opts.timeoutMs ?? 6 * 3_600_000);
  for (;;) {
    const progress = await backfillProgress(ctx, request.plan, request.since);
    opts.onProgress?.(progress);
    if (progress.started === progress.expected && progress.running === 0) return { progress, finished: true };
    if (Date.now() > deadline) return { progress, finished: false };
    await new Promise((resolve) => setTimeout(resolve, opts.pollMs ?? 2_000));
  }
}

// ---------- pause / resume ----------

export interface PauseResult {
  readonly scheduleId: string;
  readonly paused: boolean;
  /** The note set on the schedule. */
  readonly note: string;
}

export async function setPaused(ctx: OpsContext, dagId: string, paused: boolean, note: string | undefined): Promise<PauseResult> {
  requireDag(dagId);
  const scheduleId = scheduleIdFor(ctx, dagId);
  const handle = ctx.client.schedule.getHandle(scheduleId);
  const text = `${paused ? 'paused' : 'resumed'} via ops CLI${note ? `: ${note}` : ''}`;
  try {
    if (paused) await handle.pause(text);
    else await handle.unpause(text);
  } catch (err) {
    if (err instanceof ScheduleNotFoundError)
      throw new OpsError(`Schedule "${scheduleId}" does not exist; run \`npm run schedules:apply\` first.`);
    throw err;
  }
  return { scheduleId, paused, note: text };
}

// ---------- trigger / rerun ----------

export interface StartedRun {
  readonly workflowId: string;
  readonly runId: string;
}

export async function startDagRun(
  ctx: OpsContext,
  dagId: string,
  interval: DataInterval,
  extra: Pick<RunDagInput, 'skipTasks' | 'rerunOf'> = {},
): Promise<StartedRun> {
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

export interface TriggerResult extends StartedRun {
  readonly interval: DataInterval;
  /** The run in the Temporal UI. */
  readonly url: string;
}

/** Starts one run of a DAG for the interval starting at `opts.interval`, else the last complete one. */
export async function trigger(ctx: OpsContext, dagId: string, opts: { interval?: string } = {}): Promise<TriggerResult> {
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
  return { ...started, interval, url: workflowUiUrl(ctx.config.temporal.uiUrl, ctx.config.temporal.namespace, started.workflowId) };
}

export interface TaskStates {
  readonly workflowId: string;
  readonly status: string;
  readonly runId: string;
  readonly tasks: DagTaskState[];
  /** Where the states came from: the live query, the run's result, its failure details, or a query of the closed run. */
  readonly source: string;
}

/** Task states of a run: live from the query while it runs, from its result or failure once closed. */
export async function taskStates(ctx: OpsContext, workflowId: string): Promise<TaskStates> {
  const handle = ctx.client.workflow.getHandle<(input: RunDagInput) => Promise<DagRunResult>>(workflowId);
  let description;
  try {
    description = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError)
      throw new OpsError(`No workflow "${workflowId}". Find run ids with \`npm run ops -- runs <dag>\`.`);
    throw err;
  }
  const status = description.status.name;
  const run = { workflowId, status, runId: description.runId };
  if (status === 'RUNNING') {
    return { ...run, tasks: await handle.query(getTaskStatesQuery), source: 'live query' };
  }
  try {
    const result = await handle.result();
    return { ...run, tasks: [...result.tasks], source: 'run result' };
  } catch (err) {
    const details = dagRunFailureDetails(err);
    if (details !== undefined) return { ...run, tasks: [...details.tasks], source: 'failure details' };
  }
  // Terminated or timed out: only a worker can still answer for the closed run.
  return { ...run, tasks: await handle.query(getTaskStatesQuery), source: 'query of the closed run' };
}

export interface RerunResult extends StartedRun {
  /** The run id of the failed run this one reruns. */
  readonly rerunOf: string;
  /** Tasks that succeeded before and are not downstream of a failure. */
  readonly skipTasks: string[];
}

export async function rerunFailed(ctx: OpsContext, dagId: string, intervalStart: string): Promise<RerunResult> {
  const dag = requireDag(dagId);
  const startMs = parseInstantOption(intervalStart, '--interval');
  assertAligned(dag, startMs, '--interval');
  const workflowId = runWorkflowId(ctx, dagId, new Date(startMs));
  const previous = await taskStates(ctx, workflowId);
  if (previous.status === 'RUNNING') throw new OpsError(`${workflowId} is still running; wait for it to finish.`);
  if (previous.status === 'COMPLETED')
    throw new OpsError(`${workflowId} succeeded; nothing to rerun (use \`trigger --interval\` to run it again in full).`);
  const skipTasks = skipTasksForRerun(dag, previous.tasks);
  const started = await startDagRun(ctx, dagId, intervalStartingAt(dag, startMs), { skipTasks, rerunOf: previous.runId });
  return { ...started, rerunOf: previous.runId, skipTasks };
}
