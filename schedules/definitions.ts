/**
 * Schedules as code: which DAGs run when, with which overlap policy and catch-up window, and the
 * continuous ingestion workflow that must always be running. `schedules/apply.ts` makes the
 * server match this file.
 *
 * Choices (see docs/operations.md):
 * - hourly_pipeline fires a few minutes past each hour (SEGFLOW_HOURLY_MINUTE, default 5) and
 *   processes the previous arrival hour, so batches still in flight at the top of the hour land
 *   first. Overlap BUFFER_ONE: a slow hour never makes the next one skip, and a backlog never
 *   piles up more than one run deep. Catch-up window 6h: after an outage the missed hours run
 *   (one at a time); anything older is a backfill decision for a human.
 * - nightly_segmentation fires daily at SEGFLOW_NIGHTLY_TIME in SEGFLOW_NIGHTLY_TIMEZONE.
 *   Overlap SKIP: a second training while one runs is wasted work, the next night covers it.
 *   Catch-up window 1h: a segmentation many hours late would collide with the next day's.
 * - Schedules start `scheduledDagRun` (workflows/scheduled-dag-run.ts), which starts runDag as a
 *   child with the id `<dag>/<interval start>`, so scheduled, backfilled and manual runs of an
 *   interval share one id, and the schedule's own `<id>-<timestamp>` ids stay out of the way.
 */
import { createHash } from 'node:crypto';
import {
  ScheduleOverlapPolicy,
  WorkflowIdConflictPolicy,
  WorkflowExecutionAlreadyStartedError,
  type Client,
  type ScheduleOptions,
  type ScheduleOptionsStartWorkflowAction,
} from '@temporalio/client';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { dagRegistry } from '../dags/index.js';
import type { DagRegistry } from '../dags/dsl.js';
import { ingestWorkflowId } from '../workflows/ingest-messages.js';
import type { IngestEventsInput } from '../workflows/ingest-events.js';
import type { scheduledDagRun, ScheduledDagRunInput } from '../workflows/scheduled-dag-run.js';
import { HOURLY_PIPELINE_DAG, NIGHTLY_SEGMENTATION_DAG } from '../core/dag-ids.js';

/** Memo key on every schedule segflow creates; apply only ever touches schedules carrying it. */
export const SEGFLOW_SCHEDULE_MEMO = 'segflowManaged';
/** Memo key on the schedule's action: the hash of the definition the schedule was last written from. */
export const SEGFLOW_SPEC_HASH_MEMO = 'segflowScheduleSpecHash';

export type OverlapPolicyName = 'SKIP' | 'BUFFER_ONE' | 'BUFFER_ALL' | 'CANCEL_OTHER' | 'TERMINATE_OTHER' | 'ALLOW_ALL';

export interface DagScheduleDefinition {
  /** Server-side schedule id: the configured prefix + the DAG id. */
  readonly scheduleId: string;
  readonly dagId: string;
  readonly description: string;
  readonly cron: string;
  /** IANA time zone the cron is read in. */
  readonly timezone: string;
  readonly overlap: OverlapPolicyName;
  /** How late a missed fire may still run after an outage (Temporal duration string). */
  readonly catchupWindow: string;
  readonly taskQueue: string;
  /** Prefix of run workflow ids and schedule ids (SEGFLOW_SCHEDULE_PREFIX). */
  readonly prefix: string;
  readonly uiBaseUrl: string;
}

/** What a segflow-created schedule carries in its memo. */
export interface SegflowScheduleMemo {
  readonly prefix: string;
  readonly dagId: string;
}

export interface ScheduleDefinitionOptions {
  /** Only DAGs in this registry get a schedule (defaults to the worker's registry). */
  readonly registry?: DagRegistry;
  /** Replace the DAG ids scheduled (tests schedule an example DAG under the hourly rules). */
  readonly dagIds?: { readonly hourly?: string; readonly nightly?: string };
}

/** Every schedule the code defines, for the configuration's prefix, task queue and times. */
export function scheduleDefinitions(config: Config, opts: ScheduleDefinitionOptions = {}): DagScheduleDefinition[] {
  const { prefix, hourlyMinute, nightlyTime, nightlyTimezone } = config.schedules;
  const [hour, minute] = nightlyTime.split(':').map(Number) as [number, number];
  const common = { taskQueue: config.temporal.taskQueue, prefix, uiBaseUrl: config.temporal.uiUrl };
  const hourly = opts.dagIds?.hourly ?? HOURLY_PIPELINE_DAG;
  const nightly = opts.dagIds?.nightly ?? NIGHTLY_SEGMENTATION_DAG;
  const defs: DagScheduleDefinition[] = [
    {
      ...common,
      scheduleId: `${prefix}${hourly}`,
      dagId: hourly,
      description: `${hourly}: every hour at minute ${hourlyMinute}, for the previous hour`,
      cron: `${hourlyMinute} * * * *`,
      timezone: 'UTC',
      overlap: 'BUFFER_ONE',
      catchupWindow: '6h',
    },
    {
      ...common,
      scheduleId: `${prefix}${nightly}`,
      dagId: nightly,
      description: `${nightly}: daily at ${nightlyTime} ${nightlyTimezone}`,
      cron: `${minute} ${hour} * * *`,
      timezone: nightlyTimezone,
      overlap: 'SKIP',
      catchupWindow: '1h',
    },
  ];
  // A DAG triggered by its data instead of a schedule gets none (dags/dsl.ts triggeredBy).
  return defs.filter((d) => dagRegistry.get(d.dagId)?.triggeredBy?.schedule !== 'instead');
}

/** Splits definitions into those whose DAG is registered and those that cannot run here. */
export function partitionByRegistry(
  defs: readonly DagScheduleDefinition[],
  registry: DagRegistry = dagRegistry,
): { runnable: DagScheduleDefinition[]; unknownDag: DagScheduleDefinition[] } {
  return {
    runnable: defs.filter((d) => registry.has(d.dagId)),
    unknownDag: defs.filter((d) => !registry.has(d.dagId)),
  };
}

/** The workflow id base of a schedule's launchers; Temporal appends `-<nominal time>`. */
export function launcherWorkflowId(def: Pick<DagScheduleDefinition, 'prefix' | 'dagId'>): string {
  return `${def.prefix}schedule/${def.dagId}`;
}

/** Stable hash of everything apply writes, so a changed definition (and only that) is updated. */
export function specHash(def: DagScheduleDefinition): string {
  const normalized = {
    v: 1,
    scheduleId: def.scheduleId,
    dagId: def.dagId,
    description: def.description,
    cron: def.cron.trim().split(/\s+/).join(' '),
    timezone: def.timezone,
    overlap: def.overlap,
    catchupWindow: def.catchupWindow,
    taskQueue: def.taskQueue,
    prefix: def.prefix,
    uiBaseUrl: def.uiBaseUrl,
  };
  return createHash('sha256').update(JSON.stringify(normalized)).digest('hex').slice(0, 16);
}

export function launcherInput(def: DagScheduleDefinition): ScheduledDagRunInput {
  return { dagId: def.dagId, runIdPrefix: def.prefix, uiBaseUrl: def.uiBaseUrl };
}

export function scheduleAction(def: DagScheduleDefinition): ScheduleOptionsStartWorkflowAction<typeof scheduledDagRun> {
  return {
    type: 'startWorkflow',
    workflowType: 'scheduledDagRun',
    workflowId: launcherWorkflowId(def),
    taskQueue: def.taskQueue,
    args: [launcherInput(def)],
    memo: { [SEGFLOW_SPEC_HASH_MEMO]: specHash(def) },
    staticSummary: `schedule of ${def.dagId}`,
  };
}

export function schedulePolicies(def: DagScheduleDefinition): NonNullable<ScheduleOptions['policies']> {
  return {
    overlap: ScheduleOverlapPolicy[def.overlap],
    catchupWindow: def.catchupWindow as `${number}h`,
    // A failed interval alerts on its own; the next hour must still run.
    pauseOnFailure: false,
  };
}

export function scheduleSpec(def: DagScheduleDefinition): ScheduleOptions['spec'] {
  return { cronExpressions: [def.cron], timezone: def.timezone };
}

/** Create options for a new schedule: the definition plus the memo that marks it as segflow's. */
export function scheduleOptions(def: DagScheduleDefinition): ScheduleOptions<ScheduleOptionsStartWorkflowAction<typeof scheduledDagRun>> {
  const memo: SegflowScheduleMemo = { prefix: def.prefix, dagId: def.dagId };
  return {
    scheduleId: def.scheduleId,
    spec: scheduleSpec(def),
    action: scheduleAction(def),
    policies: schedulePolicies(def),
    memo: { [SEGFLOW_SCHEDULE_MEMO]: memo },
    state: { note: `managed by segflow (schedules/definitions.ts): ${def.description}` },
  };
}

/** The continuous lake ingestion: arguments and id of its workflow. */
export function ingestionStart(config: Config): { workflowId: string; input: IngestEventsInput } {
  return {
    workflowId: `${config.schedules.prefix}${ingestWorkflowId(config.pubsub.lakeSubscription)}`,
    input: {
      subscription: config.pubsub.lakeSubscription,
      maxMessages: config.ingest.batchSize,
      maxWaitMs: config.ingest.maxWaitMs,
      concurrency: config.ingest.concurrency,
    },
  };
}

/**
 * Starts `ingest/<subscription>` unless it is running. Continuous ingestion is one long-running
 * workflow (it continues as new by itself), not a schedule: a schedule would stop and start it.
 */
export async function ensureIngestion(
  client: Client,
  config: Config,
  logger?: Pick<Logger, 'info'>,
): Promise<{ workflowId: string; started: boolean; runId: string }> {
  const { workflowId, input } = ingestionStart(config);
  try {
    const handle = await client.workflow.start('ingestEvents', {
      workflowId,
      taskQueue: config.temporal.taskQueue,
      args: [input],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      staticSummary: `continuous ingestion of ${input.subscription} into gs://${config.lake.bucket}`,
    });
    logger?.info({ workflowId, runId: handle.firstExecutionRunId }, 'ingestion started');
    return { workflowId, started: true, runId: handle.firstExecutionRunId };
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const description = await client.workflow.getHandle(workflowId).describe();
    logger?.info({ workflowId, runId: description.runId }, 'ingestion already running');
    return { workflowId, started: false, runId: description.runId };
  }
}
