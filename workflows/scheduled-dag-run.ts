/**
 * scheduledDagRun: what a segflow schedule starts. A Temporal schedule names the workflows it
 * starts `<schedule workflow id>-<nominal time>` and passes the nominal time only as the
 * TemporalScheduledStartTime search attribute, so this small launcher turns the nominal time
 * into the data interval and runs runDag as a child with the run id operators expect,
 * `hourly_pipeline/2026-11-26T09:00:00Z`, whether a run came from the schedule, a backfill,
 * `ops trigger` or `ops rerun-failed`.
 *
 * The interval ends at the last interval boundary at or before the nominal time (UTC), so a
 * schedule may fire a few minutes past the hour (late batches land first) and still process
 * the whole previous hour. The launcher waits for the run, so the schedule's overlap policy
 * applies to the DAG run itself.
 */
import { ApplicationFailure, ParentClosePolicy, WorkflowIdReusePolicy, executeChild, log, workflowInfo } from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { INTERVAL_PERIOD_MS, type DagIntervalUnit } from '../dags/dsl.js';
import { dagRegistry } from '../dags/index.js';
import {
  DAG_ID_SEARCH_ATTRIBUTE,
  LOGICAL_DATE_SEARCH_ATTRIBUTE,
  dagRunWorkflowId,
  dataIntervalEndingAt,
  type DagRunResult,
  type RunDagInput,
} from './dag-messages.js';
import { scheduledStartTime } from './scheduled-start.js';
import type { runDag } from './run-dag.js';

export interface ScheduledDagRunInput {
  readonly dagId: string;
  /** Prefix of the run's workflow id (SEGFLOW_SCHEDULE_PREFIX); empty in a normal deployment. */
  readonly runIdPrefix?: string;
  readonly uiBaseUrl?: string;
}

/** End of the data interval a schedule fire at `nominal` processes: the boundary at or before it. */
export function intervalEndForNominalTime(unit: DagIntervalUnit, nominal: Date | number): number {
  const period = INTERVAL_PERIOD_MS[unit];
  const t = new Date(nominal).getTime();
  return t - (((t % period) + period) % period);
}

export async function scheduledDagRun(input: ScheduledDagRunInput): Promise<DagRunResult> {
  const dag = dagRegistry.get(input.dagId);
  if (dag === undefined) {
    throw ApplicationFailure.nonRetryable(
      `Unknown DAG "${input.dagId}". Known DAGs: ${[...dagRegistry.keys()].join(', ')}. Register it in dags/index.ts or remove its schedule.`,
      'UnknownDag',
    );
  }
  const nominal = scheduledStartTime();
  if (nominal === undefined) {
    throw ApplicationFailure.nonRetryable(
      'scheduledDagRun must be started by a schedule (TemporalScheduledStartTime is not set); use `npm run ops -- trigger` for manual runs.',
      'NotScheduled',
    );
  }
  const interval = dataIntervalEndingAt(dag.interval, intervalEndForNominalTime(dag.interval, nominal));
  const workflowId = `${input.runIdPrefix ?? ''}${dagRunWorkflowId(dag.id, interval.start)}`;
  log.info('scheduled DAG run', { dagId: dag.id, nominal: nominal.toISOString(), interval, workflowId });
  const runInput: RunDagInput = { dagId: dag.id, interval, ...(input.uiBaseUrl === undefined ? {} : { uiBaseUrl: input.uiBaseUrl }) };
  try {
    return await executeChild<typeof runDag>('runDag', {
      workflowId,
      args: [runInput],
      taskQueue: workflowInfo().taskQueue,
      typedSearchAttributes: [
        { key: DAG_ID_SEARCH_ATTRIBUTE, value: dag.id },
        { key: LOGICAL_DATE_SEARCH_ATTRIBUTE, value: new Date(interval.start) },
      ],
      staticSummary: `${dag.id} ${interval.start} .. ${interval.end} (scheduled ${nominal.toISOString()})`,
      // Cancelling the launcher (or the schedule's cancel-other overlap) cancels the run cleanly.
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      // A DAG triggered by its data beside its schedule runs an interval once: whichever starts first.
      ...(dag.triggeredBy === undefined ? {} : { workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE }),
    });
  } catch (err) {
    if (dag.triggeredBy === undefined || !(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    log.info('the interval already has its run (its data landed first); the schedule does not run it again', { dagId: dag.id, workflowId });
    return { dagId: dag.id, interval, tasks: [] };
  }
}
