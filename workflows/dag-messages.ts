/**
 * The contract of the runDag workflow, shared by the workflow, clients (schedules, ops CLI) and
 * tests: input and result types, the query, search attributes, workflow ids, data intervals,
 * and the rerun helper. Deterministic and free of Node modules.
 */
import { ApplicationFailure, defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery } from '@temporalio/workflow';
import { buildDagGraph, downstreamClosure } from '../core/dag-graph.js';
import { formatInstant, parseInstant } from '../core/time.js';
import { type DataInterval } from '../core/dag-task.js';
import type { SensorProgress } from '../core/sensors.js';
import { INTERVAL_PERIOD_MS, type DagDefinition, type DagIntervalUnit } from '../dags/dsl.js';

export interface RunDagInput {
  readonly dagId: string;
  /** Taken from the schedule's nominal time when absent. */
  readonly interval?: DataInterval;
  /** Tasks to treat as already succeeded (state `skipped`), e.g. from `skipTasksForRerun`. */
  readonly skipTasks?: readonly string[];
  /** Run id of the failed run this one repeats; recorded in the result and alerts. */
  readonly rerunOf?: string;
  /** Temporal Web UI base URL for links in alerts, e.g. `http://localhost:8233`. */
  readonly uiBaseUrl?: string;
}

/**
 * Airflow's task states. `up_for_retry`: an attempt failed and the next one waits for its
 * backoff. `sensing`: a sensor task waiting for its condition (see `sensor`). `skipped` counts as
 * success for downstream tasks.
 */
export type TaskState = 'queued' | 'running' | 'sensing' | 'up_for_retry' | 'succeeded' | 'failed' | 'skipped' | 'upstream_failed';

export interface DagTaskState {
  readonly taskId: string;
  readonly state: TaskState;
  /** Attempts started so far (0 for tasks that never ran). */
  readonly attempts: number;
  readonly startedAt?: string;
  readonly endedAt?: string;
  /** Message of the latest failed attempt. */
  readonly error?: string;
  /** When the next attempt starts, for `up_for_retry`. */
  readonly nextAttemptAt?: string;
  /** The task's own deadline and how it went, when it declares one. */
  readonly deadline?: DeadlineOutcome;
  /** A sensor task's pokes so far and, while `sensing`, when the next one starts. */
  readonly sensor?: SensorProgress;
}

/**
 * A deadline and how a run (or task) met it. `missed` once the deadline passed with the work still
 * going (or not started); `lateByMs` once late work has finished. `alerted` is false for runs started
 * after their deadline (backfills, reruns of old intervals): they are late by nature and raise none.
 */
export interface DeadlineOutcome {
  readonly deadline: string;
  readonly missed: boolean;
  readonly alerted: boolean;
  readonly lateByMs?: number;
}

/** Memo key under which a run with a deadline keeps its DeadlineOutcome, for `ops status` and the UI. */
export const DEADLINE_MEMO_KEY = 'deadline';

export interface DagRunResult {
  readonly dagId: string;
  readonly interval: DataInterval;
  readonly rerunOf?: string;
  readonly tasks: readonly DagTaskState[];
  /** The run's deadline and how it went, when the DAG declares one. */
  readonly deadline?: DeadlineOutcome;
}

/** `details[0]` of the ApplicationFailure (type DAG_RUN_FAILED) that a failed run ends with. */
export interface DagRunFailureDetails extends DagRunResult {
  readonly failedTasks: readonly string[];
}

export const DAG_RUN_FAILED = 'DagRunFailed';

/** The details of a failed run from the error `handle.result()` rejects with, if it is one. */
export function dagRunFailureDetails(error: unknown): DagRunFailureDetails | undefined {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e instanceof ApplicationFailure && e.type === DAG_RUN_FAILED) return e.details?.[0] as DagRunFailureDetails;
  }
  return undefined;
}

/** Every task's state, in declaration order. Also answers for closed runs while a worker runs. */
export const getTaskStatesQuery = defineQuery<DagTaskState[]>('getTaskStates');

export const DAG_ID_SEARCH_ATTRIBUTE = defineSearchAttributeKey('DagId', SearchAttributeType.KEYWORD);
/** Start of the data interval, Airflow's logical date. */
export const LOGICAL_DATE_SEARCH_ATTRIBUTE = defineSearchAttributeKey('LogicalDate', SearchAttributeType.DATETIME);
export const DAG_SEARCH_ATTRIBUTES = [DAG_ID_SEARCH_ATTRIBUTE, LOGICAL_DATE_SEARCH_ATTRIBUTE] as const;
/** Set by Temporal on workflows started by a schedule: the nominal (unjittered) start time. */
export const SCHEDULED_START_TIME_SEARCH_ATTRIBUTE = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

/** Re-exported because the contract's callers (ops CLI, scripts, tests) format instants as its ids do. */
export { formatInstant };

/** `<dagId>/<interval start>`, e.g. `hourly_pipeline/2026-11-26T09:00:00Z`. */
export function dagRunWorkflowId(dagId: string, intervalStart: string | Date): string {
  return `${dagId}/${formatInstant(typeof intervalStart === 'string' ? instantOf(intervalStart, 'interval start') : intervalStart)}`;
}

/** The interval a run scheduled at `nominalTime` covers: [nominal - period, nominal). */
export function dataIntervalEndingAt(unit: DagIntervalUnit, nominalTime: Date | number): DataInterval {
  const end = new Date(nominalTime).getTime();
  return { start: formatInstant(end - INTERVAL_PERIOD_MS[unit]), end: formatInstant(end) };
}

/** Canonical form of an interval given by a caller; throws a message naming what is wrong. */
export function normalizeDataInterval(interval: DataInterval): DataInterval {
  const start = instantOf(interval.start, 'interval start');
  const end = instantOf(interval.end, 'interval end');
  if (start >= end) {
    throw new RangeError(`Data interval start ${interval.start} must be before its end ${interval.end}.`);
  }
  return { start: formatInstant(start), end: formatInstant(end) };
}

function instantOf(text: string, what: string): number {
  const ms = parseInstant(text);
  if (Number.isNaN(ms)) {
    throw new RangeError(`Expected ${what} as an RFC 3339 instant like 2026-11-26T09:00:00Z, found "${text}".`);
  }
  return ms;
}

/**
 * Tasks a rerun of a failed interval can skip: those that succeeded (or were skipped as
 * succeeded) last time, unless they are downstream of a task that runs again, because their
 * inputs are about to change. Tasks missing from `previous` (a changed DAG) run.
 */
export function skipTasksForRerun(dag: DagDefinition, previous: readonly DagTaskState[]): string[] {
  const done = new Set(previous.filter((t) => t.state === 'succeeded' || t.state === 'skipped').map((t) => t.taskId));
  const rerun = downstreamClosure(
    buildDagGraph(dag.tasks, dag.id),
    dag.tasks.filter((t) => !done.has(t.id)).map((t) => t.id),
  );
  return dag.tasks.filter((t) => !rerun.has(t.id)).map((t) => t.id);
}
