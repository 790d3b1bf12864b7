/**
 * The typed API for Airflow-style DAGs. A DAG definition is plain JSON-serializable data,
 * validated once when it is defined, and importable from workflow code (no Node modules).
 */
import { DagValidationError, findGraphProblems, findUnknownActivities, type DagProblem } from '../core/dag-graph.js';
import type { JsonValue } from '../core/dag-task.js';
import { deadlineProblems, type DeadlineSpec } from '../core/deadlines.js';
import { SENSOR_POKE_ACTIVITY, sensorProblems, type SensorSpec } from '../core/sensors.js';
import { MS_PER_UNIT, parseDuration, type Duration } from '../core/time.js';
import { SQL_MODEL_ACTIVITY } from '../elt/names.js';

/**
 * Milliseconds, or a number with a unit. A strict subset of Temporal's `Duration`, so it can be
 * handed to the SDK unchanged and parsed here without a dependency.
 */
export type DagDuration = number | Duration;

export interface DagRetryPolicy {
  readonly initialInterval: DagDuration;
  readonly backoffCoefficient: number;
  readonly maximumInterval: DagDuration;
  /** Total attempts including the first; 0 means unlimited (as in Temporal). */
  readonly maximumAttempts: number;
  /** Application error types that fail the task at once instead of retrying. */
  readonly nonRetryableErrorTypes?: readonly string[];
}

export interface DagTaskOptions {
  readonly retry?: Partial<DagRetryPolicy>;
  readonly startToCloseTimeout?: DagDuration;
  readonly heartbeatTimeout?: DagDuration;
  /** Run on another worker pool (e.g. ML training); defaults to the DAG run's task queue. */
  readonly taskQueue?: string;
  /**
   * Run as a Temporal local activity: executed by the worker running the DAG, recorded as one
   * marker event instead of three activity events. Only for short tasks (seconds) that need
   * neither heartbeats nor another task queue.
   */
  readonly local?: boolean;
}

export interface DefaultTaskOptions extends DagTaskOptions {
  readonly retry: DagRetryPolicy;
  readonly startToCloseTimeout: DagDuration;
}

/** Airflow trigger rules supported by the runner. */
export type TriggerRule = 'all_success' | 'all_done';

export type TaskRun =
  | { readonly activity: string; readonly args?: JsonValue }
  /** Runs the activity named by SQL_MODEL_ACTIVITY with the model name. */
  | { readonly sqlModel: string }
  /** Waits for a condition outside segflow: one short poke activity per pokeInterval (docs/dags.md#sensors). */
  | { readonly sensor: SensorSpec };

export interface DagTaskDefinition extends DagTaskOptions {
  readonly id: string;
  readonly run: TaskRun;
  readonly upstream?: readonly string[];
  /** Defaults to 'all_success'. */
  readonly triggerRule?: TriggerRule;
  /** When this task must be done, relative to the data interval's end (see DagSpec.deadline). */
  readonly deadline?: DeadlineSpec;
}

export interface DagSchedule {
  readonly cron: string;
  /** IANA zone; UTC when absent. */
  readonly timezone?: string;
}

export type DagIntervalUnit = 'hourly' | 'daily';

export interface DataTrigger {
  readonly assets: readonly string[];
  readonly schedule: 'beside' | 'instead';
}

export interface DagSpec {
  readonly id: string;
  readonly description?: string;
  readonly schedule?: DagSchedule;
  /** Length of the data interval a scheduled run covers: [nominal time - period, nominal time). */
  readonly interval: DagIntervalUnit;
  readonly defaultTaskOptions: DefaultTaskOptions;
  readonly maxParallelism: number;
  /**
   * When a run must be done: `{ after: '30m' }` past its interval's end, or `{ at: '05:00' }` (in
   * `timezone`, else the schedule's zone, else UTC). A run still going then raises one alert
   * (`severity`, default `warning`) and keeps going.
   */
  readonly deadline?: DeadlineSpec;
  /**
   * Assets a successful run writes for its data interval (one partition per interval), e.g.
   * `['marts.customer_features']`. DAGs that need them are told when a run succeeds (dags/assets.ts).
   */
  readonly produces?: readonly string[];
  /**
   * Run when the data is there: once every partition of `assets` in this DAG's interval has landed
   * (e.g. the day's 24 hourly partitions), beside the schedule (`schedule: 'beside'`, the first of the
   * two wins, the other does not run the interval again) or instead of it (`'instead'`: no schedule).
   */
  readonly triggeredBy?: DataTrigger;
  /** A list, or a function computing it (e.g. tasks derived from SQL models' `ref()`s). */
  readonly tasks: readonly DagTaskDefinition[] | (() => readonly DagTaskDefinition[]);
}

export interface DagDefinition extends Omit<DagSpec, 'tasks'> {
  readonly tasks: readonly DagTaskDefinition[];
}

export function taskActivityName(task: DagTaskDefinition): string {
  if ('sensor' in task.run) return SENSOR_POKE_ACTIVITY;
  return 'sqlModel' in task.run ? SQL_MODEL_ACTIVITY : task.run.activity;
}

export const INTERVAL_PERIOD_MS: Readonly<Record<DagIntervalUnit, number>> = {
  hourly: MS_PER_UNIT.h,
  daily: MS_PER_UNIT.d,
};

/** Milliseconds for a DagDuration; NaN when the string is malformed (validation reports it). */
export function durationToMs(duration: DagDuration): number {
  if (typeof duration === 'number') return duration;
  return parseDuration(duration);
}

/** Ids end up in workflow ids (`<dagId>/<start>`), activity ids and SQL-ish places. */
const ID_PATTERN = /^[A-Za-z0-9_.-]+$/;
/** Asset names are warehouse-style `dataset.table` (or any dotted name). */
const ASSET_PATTERN = /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/;

/** Define and validate a DAG; throws DagValidationError naming every problem. */
export function defineDag(spec: DagSpec): DagDefinition {
  const tasks = Object.freeze([...(typeof spec.tasks === 'function' ? spec.tasks() : spec.tasks)]);
  const dag: DagDefinition = Object.freeze({ ...spec, tasks });
  const problems = [...findOptionProblems(dag), ...findGraphProblems(tasks)];
  if (problems.length > 0) throw new DagValidationError(spec.id, problems);
  return dag;
}

/** Throws DagValidationError if a task runs an activity that is not in `registeredActivities`. */
export function assertDagActivitiesRegistered(dag: DagDefinition, registeredActivities: Iterable<string>): void {
  const problems = findUnknownActivities(
    dag.tasks.map((t) => ({ id: t.id, activity: taskActivityName(t) })),
    registeredActivities,
  );
  if (problems.length > 0) throw new DagValidationError(dag.id, problems);
}

export type DagRegistry = ReadonlyMap<string, DagDefinition>;

export function createDagRegistry(dags: readonly DagDefinition[]): DagRegistry {
  const registry = new Map<string, DagDefinition>();
  for (const dag of dags) {
    if (registry.has(dag.id)) throw new Error(`Two DAGs are defined with id "${dag.id}"; DAG ids must be unique.`);
    registry.set(dag.id, dag);
  }
  return registry;
}

export interface ResolvedRetryPolicy {
  readonly initialIntervalMs: number;
  readonly backoffCoefficient: number;
  readonly maximumIntervalMs: number;
  readonly maximumAttempts: number;
  readonly nonRetryableErrorTypes: readonly string[];
}

/** A task's effective options: its own overrides on top of the DAG's defaults, in milliseconds. */
export interface ResolvedTaskOptions {
  readonly activity: string;
  readonly local: boolean;
  readonly taskQueue?: string;
  readonly startToCloseTimeoutMs: number;
  readonly heartbeatTimeoutMs?: number;
  readonly retry: ResolvedRetryPolicy;
  readonly triggerRule: TriggerRule;
}

export function resolveTaskOptions(dag: DagDefinition, task: DagTaskDefinition): ResolvedTaskOptions {
  const defaults = dag.defaultTaskOptions;
  const retry: DagRetryPolicy = { ...defaults.retry, ...task.retry };
  const heartbeat = task.heartbeatTimeout ?? defaults.heartbeatTimeout;
  const taskQueue = task.taskQueue ?? defaults.taskQueue;
  return {
    activity: taskActivityName(task),
    local: task.local ?? defaults.local ?? false,
    ...(taskQueue === undefined ? {} : { taskQueue }),
    startToCloseTimeoutMs: durationToMs(task.startToCloseTimeout ?? defaults.startToCloseTimeout),
    ...(heartbeat === undefined ? {} : { heartbeatTimeoutMs: durationToMs(heartbeat) }),
    retry: {
      initialIntervalMs: durationToMs(retry.initialInterval),
      backoffCoefficient: retry.backoffCoefficient,
      maximumIntervalMs: durationToMs(retry.maximumInterval),
      maximumAttempts: retry.maximumAttempts,
      nonRetryableErrorTypes: retry.nonRetryableErrorTypes ?? [],
    },
    triggerRule: task.triggerRule ?? 'all_success',
  };
}

function findOptionProblems(dag: DagDefinition): DagProblem[] {
  const problems: DagProblem[] = [];
  const bad = (option: string, message: string, taskId?: string): void => {
    problems.push({ kind: 'invalid_option', option, message, ...(taskId === undefined ? {} : { taskId }) });
  };

  if (!ID_PATTERN.test(dag.id)) bad('id', `must match ${ID_PATTERN.source}, found "${dag.id}"`);
  if (!(dag.interval in INTERVAL_PERIOD_MS)) {
    bad('interval', `must be one of ${Object.keys(INTERVAL_PERIOD_MS).join(', ')}, found "${String(dag.interval)}"`);
  }
  if (!Number.isInteger(dag.maxParallelism) || dag.maxParallelism < 1) {
    bad('maxParallelism', `must be a positive integer, found ${dag.maxParallelism}`);
  }
  if (dag.schedule !== undefined && dag.schedule.cron.trim() === '') bad('schedule.cron', 'must not be empty');
  if (dag.tasks.length === 0) bad('tasks', 'must contain at least one task');
  for (const message of dag.deadline === undefined ? [] : deadlineProblems(dag.deadline)) bad('deadline', message);
  for (const asset of dag.produces ?? []) {
    if (!ASSET_PATTERN.test(asset)) bad('produces', `asset names must match ${ASSET_PATTERN.source}, found "${asset}"`);
  }
  if (dag.triggeredBy !== undefined) {
    const { assets, schedule } = dag.triggeredBy;
    if (assets.length === 0) bad('triggeredBy.assets', 'must name at least one asset');
    for (const asset of assets) {
      if (!ASSET_PATTERN.test(asset)) bad('triggeredBy.assets', `asset names must match ${ASSET_PATTERN.source}, found "${asset}"`);
      if (dag.produces?.includes(asset)) bad('triggeredBy.assets', `"${asset}" is produced by this DAG itself`);
    }
    if (schedule !== 'beside' && schedule !== 'instead')
      bad('triggeredBy.schedule', `must be "beside" or "instead", found "${String(schedule)}"`);
    if (schedule === 'beside' && dag.schedule === undefined) bad('triggeredBy.schedule', '"beside" needs a schedule; use "instead"');
  }

  const checkOptions = (options: DagTaskOptions, prefix: string, taskId?: string): void => {
    const durations: [string, DagDuration | undefined][] = [
      ['startToCloseTimeout', options.startToCloseTimeout],
      ['heartbeatTimeout', options.heartbeatTimeout],
      ['retry.initialInterval', options.retry?.initialInterval],
      ['retry.maximumInterval', options.retry?.maximumInterval],
    ];
    for (const [name, value] of durations) {
      if (value === undefined) continue;
      const ms = durationToMs(value);
      if (!Number.isFinite(ms) || ms <= 0) {
        bad(`${prefix}${name}`, `must be a positive duration like 30s, 5m or 1h, found ${JSON.stringify(value)}`, taskId);
      }
    }
    const attempts = options.retry?.maximumAttempts;
    if (attempts !== undefined && (!Number.isInteger(attempts) || attempts < 0)) {
      bad(`${prefix}retry.maximumAttempts`, `must be an integer >= 0 (0 = unlimited), found ${attempts}`, taskId);
    }
    const coefficient = options.retry?.backoffCoefficient;
    if (coefficient !== undefined && !(coefficient >= 1)) {
      bad(`${prefix}retry.backoffCoefficient`, `must be >= 1, found ${coefficient}`, taskId);
    }
  };
  checkOptions(dag.defaultTaskOptions, 'defaultTaskOptions.');

  for (const task of dag.tasks) {
    if (!ID_PATTERN.test(task.id)) bad('id', `must match ${ID_PATTERN.source}, found "${task.id}"`, task.id);
    checkOptions(task, '', task.id);
    const resolved = resolveTaskOptions(dag, task);
    // Local activities are executed inside the workflow task: no heartbeats, no other queue.
    if (resolved.local && resolved.heartbeatTimeoutMs !== undefined) {
      bad('local', 'cannot be combined with heartbeatTimeout; make the task a regular activity', task.id);
    }
    if (resolved.local && resolved.taskQueue !== undefined) {
      bad('local', 'cannot be combined with taskQueue; make the task a regular activity', task.id);
    }
    for (const message of task.deadline === undefined ? [] : deadlineProblems(task.deadline)) bad('deadline', message, task.id);
    if ('sensor' in task.run) {
      for (const message of sensorProblems(task.run.sensor)) bad('run.sensor', message, task.id);
      continue;
    }
    const runName = 'sqlModel' in task.run ? task.run.sqlModel : task.run.activity;
    if (runName.trim() === '') bad('run', 'must name an activity or a SQL model', task.id);
  }
  return problems;
}
