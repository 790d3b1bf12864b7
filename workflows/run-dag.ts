/**
 * runDag: runs one data interval of an Airflow-style DAG. Tasks start as soon as their upstreams
 * allow, up to the DAG's maxParallelism; a failure raises one alert and fails the run.
 *
 * Retries are driven here, not by Temporal's activity retry policy: each attempt is its own
 * activity (maximumAttempts 1) and the backoff is a workflow timer. That costs nothing when tasks
 * succeed, and it is the only way the run knows how many attempts a task took (Temporal does not
 * report the attempt of a completed activity to the workflow), which operators see as the
 * Airflow "try number" in getTaskStates and in alerts.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ServerFailure,
  TimeoutFailure,
  isCancellation,
  log,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
  type LocalActivityOptions,
} from '@temporalio/workflow';
import { scheduledStartTime } from './scheduled-start.js';
import { dagRunFailedAlert, type Alert } from '../core/alerts.js';
import { buildDagGraph, type DagGraph } from '../core/dag-graph.js';
import { deadlineInstant, deadlineMissedAlert, formatLateness, type DeadlineSpec } from '../core/deadlines.js';
import { DeadlineWatch } from './dag-deadlines.js';
import { announceProducedAssets } from './dag-assets.js';
import { runSensor } from './dag-sensor.js';
import type { SensorProgress } from '../core/sensors.js';
import { dagRegistry } from '../dags/index.js';
import { type DagTaskInput, type DataInterval, type SqlModelTaskInput } from '../core/dag-task.js';
import {
  durationToMs,
  resolveTaskOptions,
  type DagDefinition,
  type DagTaskDefinition,
  type ResolvedRetryPolicy,
  type ResolvedTaskOptions,
  type TriggerRule,
} from '../dags/dsl.js';
import {
  DAG_ID_SEARCH_ATTRIBUTE,
  DAG_RUN_FAILED,
  DEADLINE_MEMO_KEY,
  LOGICAL_DATE_SEARCH_ATTRIBUTE,
  dataIntervalEndingAt,
  formatInstant,
  getTaskStatesQuery,
  normalizeDataInterval,
  type DagRunFailureDetails,
  type DagRunResult,
  type DagTaskState,
  type DeadlineOutcome,
  type RunDagInput,
  type TaskState,
} from './dag-messages.js';

const { raiseAlert } = proxyActivities<{ raiseAlert(alert: Alert): Promise<unknown> }>({
  startToCloseTimeout: '2m',
  retry: { initialInterval: '5s', maximumAttempts: 3 },
});

type TaskActivity = (input: DagTaskInput | SqlModelTaskInput) => Promise<unknown>;

// Numeric state codes keep per-task bookkeeping in typed arrays; names only at query time.
const QUEUED = 0;
const RUNNING = 1;
const UP_FOR_RETRY = 2;
const SUCCEEDED = 3;
const FAILED = 4;
const SKIPPED = 5;
const UPSTREAM_FAILED = 6;
const STATE_NAMES: readonly TaskState[] = ['queued', 'running', 'up_for_retry', 'succeeded', 'failed', 'skipped', 'upstream_failed'];

export async function runDag(input: RunDagInput): Promise<DagRunResult> {
  const dag = dagRegistry.get(input.dagId);
  if (dag === undefined) {
    throw ApplicationFailure.nonRetryable(
      `Unknown DAG "${input.dagId}". Known DAGs: ${[...dagRegistry.keys()].join(', ')}. Register it in dags/index.ts.`,
      'UnknownDag',
    );
  }
  const interval = resolveDataInterval(input, dag);
  upsertSearchAttributes([
    { key: DAG_ID_SEARCH_ATTRIBUTE, value: dag.id },
    { key: LOGICAL_DATE_SEARCH_ATTRIBUTE, value: new Date(interval.start) },
  ]);

  const graph = buildDagGraph(dag.tasks, dag.id);
  const skipTasks = input.skipTasks ?? [];
  const unknownSkips = skipTasks.filter((id) => !graph.indexOf.has(id));
  if (unknownSkips.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `skipTasks names tasks that DAG "${dag.id}" does not have: ${unknownSkips.join(', ')}.`,
      'UnknownTask',
    );
  }

  const run = new DagRun(dag, graph, interval, input.uiBaseUrl);
  setHandler(getTaskStatesQuery, () => run.taskStates());
  log.info('DAG run started', { dagId: dag.id, interval, rerunOf: input.rerunOf, skipTasks: skipTasks.length });

  await run.execute(skipTasks);

  const tasks = run.taskStates();
  const deadline = run.deadlineOutcome();
  const result: DagRunResult = { dagId: dag.id, interval, ...rerunOf(input), tasks, ...(deadline === undefined ? {} : { deadline }) };
  if (deadline !== undefined) upsertMemo({ [DEADLINE_MEMO_KEY]: deadline });
  if (deadline?.lateByMs !== undefined) {
    log.warn(`DAG run finished ${formatLateness(deadline.lateByMs)} after its deadline`, { dagId: dag.id, interval, ...deadline });
  }
  if (run.cancellation !== undefined) throw run.cancellation;

  const failed = tasks.filter((t) => t.state === 'failed');
  if (failed.length === 0) {
    log.info('DAG run succeeded', { dagId: dag.id, interval });
    await announceProducedAssets(dag, interval, input.uiBaseUrl);
    return result;
  }

  const info = workflowInfo();
  const alert = dagRunFailedAlert({
    dagId: dag.id,
    interval,
    failedTasks: failed.map((t) => ({ taskId: t.taskId, attempts: t.attempts, error: t.error ?? 'unknown error' })),
    workflow: { namespace: info.namespace, workflowId: info.workflowId, runId: info.runId },
    ...(input.uiBaseUrl === undefined ? {} : { uiBaseUrl: input.uiBaseUrl }),
    occurredAt: formatInstant(Date.now()),
    ...rerunOf(input),
  });
  // The run's own failure below is what matters; a lost alert must not mask it.
  await raiseAlertLogged(alert);
  const failedTasks = failed.map((t) => t.taskId);
  const details: DagRunFailureDetails = { ...result, failedTasks };
  throw ApplicationFailure.create({
    type: DAG_RUN_FAILED,
    message: `DAG ${dag.id} failed for ${interval.start}..${interval.end}: task${failedTasks.length === 1 ? '' : 's'} ${failedTasks.join(', ')} failed`,
    nonRetryable: true,
    details: [details],
  });
}

/** Raises an alert; a delivery that fails for good is logged, never fails the run. */
async function raiseAlertLogged(alert: Alert): Promise<void> {
  try {
    await raiseAlert(alert);
  } catch (err) {
    log.error('Could not raise an alert', { kind: alert.kind, dagId: alert.dagId, dedupKey: alert.dedupKey, error: errorMessage(err) });
  }
}

function rerunOf(input: RunDagInput): { rerunOf?: string } {
  return input.rerunOf === undefined ? {} : { rerunOf: input.rerunOf };
}

function resolveDataInterval(input: RunDagInput, dag: DagDefinition): DataInterval {
  if (input.interval !== undefined) {
    try {
      return normalizeDataInterval(input.interval);
    } catch (err) {
      throw ApplicationFailure.nonRetryable(errorMessage(err), 'InvalidDataInterval');
    }
  }
  const nominal = scheduledStartTime();
  if (nominal !== undefined) return dataIntervalEndingAt(dag.interval, nominal);
  throw ApplicationFailure.nonRetryable(
    `No data interval for DAG "${dag.id}": pass input.interval ({ start, end }) or start the run from a schedule, ` +
      'which sets the TemporalScheduledStartTime search attribute.',
    'MissingDataInterval',
  );
}

/**
 * Scheduling state of one run. Work per finished task is O(its downstream count): each task
 * keeps a count of unfinished upstreams and becomes ready when it reaches zero.
 */
class DagRun {
  private readonly n: number;
  private readonly state: Uint8Array;
  private readonly attempts: Uint32Array;
  private readonly pendingUpstreams: Uint32Array;
  /** 1 when an upstream ended in a state other than succeeded/skipped. */
  private readonly upstreamNotOk: Uint8Array;
  private readonly startedAt: Float64Array;
  private readonly endedAt: Float64Array;
  private readonly nextAttemptAt: Float64Array;
  private readonly errors = new Map<number, string>();
  private readonly sensors = new Map<number, SensorProgress>();
  private readonly options: (ResolvedTaskOptions | undefined)[];
  /** FIFO of tasks whose upstreams allow them to start; `readyHead` is the next one. */
  private readonly ready: number[] = [];
  private readyHead = 0;
  private running = 0;
  private finished = 0;
  private succeededCount = 0;
  private failedCount = 0;
  private upstreamFailedCount = 0;
  private resolveDone: (() => void) | undefined;
  private runDeadline: DeadlineWatch | undefined;
  private readonly taskDeadlines = new Map<number, DeadlineWatch>();
  /** Alerts still being delivered; the run waits for them before it ends. */
  private readonly pendingAlerts: Promise<void>[] = [];
  cancellation: unknown;

  constructor(
    private readonly dag: DagDefinition,
    private readonly graph: DagGraph,
    private readonly interval: DataInterval,
    private readonly uiBaseUrl: string | undefined,
  ) {
    this.n = graph.ids.length;
    this.state = new Uint8Array(this.n);
    this.attempts = new Uint32Array(this.n);
    this.pendingUpstreams = Uint32Array.from(graph.upstream, (u) => u.length);
    this.upstreamNotOk = new Uint8Array(this.n);
    this.startedAt = new Float64Array(this.n);
    this.endedAt = new Float64Array(this.n);
    this.nextAttemptAt = new Float64Array(this.n);
    this.options = new Array<ResolvedTaskOptions | undefined>(this.n);
  }

  async execute(skipTasks: readonly string[]): Promise<void> {
    const done = new Promise<void>((resolve) => {
      this.resolveDone = resolve;
    });
    // Running activities and backoff timers are cancelled by the SDK; this stops new starts.
    CancellationScope.current().cancelRequested.catch((err: unknown) => {
      this.cancellation ??= err;
    });
    for (let i = 0; i < this.n; i++) {
      if (this.pendingUpstreams[i] === 0) this.ready.push(i);
    }
    for (const id of new Set(skipTasks)) {
      const i = this.graph.indexOf.get(id) as number;
      if (this.state[i] === QUEUED) this.settle(i, SKIPPED);
    }
    this.watchDeadlines();
    this.pump();
    this.checkDone();
    await done;
    await Promise.all(this.pendingAlerts);
  }

  deadlineOutcome(): DeadlineOutcome | undefined {
    return this.runDeadline?.outcome();
  }

  /** One timer per deadline (the run's, and each unfinished task's); each alerts once if it passes first. */
  private watchDeadlines(): void {
    if (this.dag.deadline !== undefined && this.finished < this.n) {
      const deadline = this.deadlineOf(this.dag.deadline);
      const watch = new DeadlineWatch(deadline, () => {
        upsertMemo({ [DEADLINE_MEMO_KEY]: watch.outcome() });
        this.deadlineMissed(deadline);
      });
      this.runDeadline = watch;
      // ops status reads a run's deadline from its memo, also while it runs.
      if (!watch.missed) upsertMemo({ [DEADLINE_MEMO_KEY]: watch.outcome() });
    }
    for (let i = 0; i < this.n; i++) {
      const spec = this.dag.tasks[i]?.deadline;
      if (spec === undefined || this.state[i] !== QUEUED) continue;
      const deadline = this.deadlineOf(spec);
      this.taskDeadlines.set(i, new DeadlineWatch(deadline, () => this.deadlineMissed(deadline, i)));
    }
  }

  private deadlineOf(spec: DeadlineSpec): number {
    return deadlineInstant(spec, Date.parse(this.interval.end), this.dag.schedule?.timezone ?? 'UTC');
  }

  private deadlineMissed(deadline: number, task?: number): void {
    const taskId = task === undefined ? undefined : (this.graph.ids[task] as string);
    const spec = task === undefined ? this.dag.deadline : this.dag.tasks[task]?.deadline;
    const info = workflowInfo();
    log.warn('DAG deadline missed; the run keeps going', { dagId: this.dag.id, taskId, deadline: formatInstant(deadline) });
    const alert = deadlineMissedAlert({
      dagId: this.dag.id,
      ...(taskId === undefined ? {} : { taskId }),
      interval: this.interval,
      deadline,
      severity: spec?.severity ?? 'warning',
      progress: this.details(),
      workflow: { namespace: info.namespace, workflowId: info.workflowId, runId: info.runId },
      ...(this.uiBaseUrl === undefined ? {} : { uiBaseUrl: this.uiBaseUrl }),
      occurredAt: formatInstant(Date.now()),
    });
    this.pendingAlerts.push(raiseAlertLogged(alert));
    setCurrentDetails(this.details());
  }

  taskStates(): DagTaskState[] {
    const states: DagTaskState[] = [];
    for (let i = 0; i < this.n; i++) {
      const state = this.state[i] as number;
      const error = this.errors.get(i);
      const deadline = this.taskDeadlines.get(i);
      const sensor = this.sensors.get(i);
      states.push({
        taskId: this.graph.ids[i] as string,
        state: state === RUNNING && sensor !== undefined ? 'sensing' : (STATE_NAMES[state] as TaskState),
        attempts: this.attempts[i] as number,
        ...(this.startedAt[i] ? { startedAt: formatInstant(this.startedAt[i] as number) } : {}),
        ...(this.endedAt[i] ? { endedAt: formatInstant(this.endedAt[i] as number) } : {}),
        ...(error === undefined ? {} : { error }),
        ...(state === UP_FOR_RETRY ? { nextAttemptAt: formatInstant(this.nextAttemptAt[i] as number) } : {}),
        ...(deadline === undefined ? {} : { deadline: deadline.outcome() }),
        ...(sensor === undefined ? {} : { sensor }),
      });
    }
    return states;
  }

  private pump(): void {
    while (this.cancellation !== undefined && this.readyHead < this.ready.length) {
      const i = this.ready[this.readyHead++] as number;
      if (this.state[i] !== QUEUED) continue;
      this.errors.set(i, 'not started: the run was cancelled');
      this.settle(i, FAILED);
    }
    while (this.running < this.dag.maxParallelism && this.readyHead < this.ready.length) {
      const i = this.ready[this.readyHead++] as number;
      // A skipped task can already be in the queue when skipTasks names a root.
      if (this.state[i] === QUEUED) this.start(i);
    }
    setCurrentDetails(this.details());
  }

  private start(i: number): void {
    const task = this.dag.tasks[i] as DagTaskDefinition;
    const options = (this.options[i] ??= resolveTaskOptions(this.dag, task));
    const attempt = (this.attempts[i] as number) + 1;
    this.attempts[i] = attempt;
    this.state[i] = RUNNING;
    this.running++;
    if (attempt === 1) this.startedAt[i] = Date.now();

    const base: DagTaskInput = {
      dagId: this.dag.id,
      taskId: task.id,
      interval: this.interval,
      ...('activity' in task.run && task.run.args !== undefined ? { args: task.run.args } : {}),
    };
    const input: DagTaskInput | SqlModelTaskInput = 'sqlModel' in task.run ? { ...base, model: task.run.sqlModel } : base;

    const activityId = attempt === 1 ? task.id : `${task.id}#${attempt}`;
    const work =
      'sensor' in task.run
        ? runSensor(task.run.sensor, base, options, activityId, this.startedAt[i] as number, (p) => this.sensors.set(i, p))
        : activityFor(options, activityId)(input);
    work.then(
      () => {
        this.running--;
        this.settle(i, SUCCEEDED);
        this.pump();
      },
      (err: unknown) => {
        this.running--;
        this.onAttemptFailed(i, options.retry, err);
        this.pump();
      },
    );
  }

  private onAttemptFailed(i: number, retry: ResolvedRetryPolicy, err: unknown): void {
    const attempt = this.attempts[i] as number;
    const message = errorMessage(err);
    this.errors.set(i, message);
    if (isCancellation(err)) {
      this.cancellation ??= err;
      this.settle(i, FAILED);
      return;
    }
    const delayMs = retryDelayMs(retry, attempt, err);
    const taskId = this.graph.ids[i];
    if (delayMs === undefined) {
      log.warn('DAG task failed', { dagId: this.dag.id, taskId, attempt, error: message });
      this.settle(i, FAILED);
      return;
    }
    log.warn('DAG task attempt failed; retrying', { dagId: this.dag.id, taskId, attempt, delayMs, error: message });
    this.state[i] = UP_FOR_RETRY;
    this.nextAttemptAt[i] = Date.now() + delayMs;
    sleep(delayMs).then(
      () => {
        this.state[i] = QUEUED;
        this.ready.push(i);
        this.pump();
      },
      (sleepErr: unknown) => {
        // Only cancellation interrupts a timer: the run is being cancelled.
        this.cancellation ??= sleepErr;
        this.settle(i, FAILED);
        this.pump();
      },
    );
  }

  /** Ends a task and propagates to downstream tasks (iteratively: chains can be long). */
  private settle(first: number, finalState: number): void {
    const settled = [first];
    this.finish(first, finalState);
    for (let k = 0; k < settled.length; k++) {
      const i = settled[k] as number;
      const ok = this.state[i] === SUCCEEDED || this.state[i] === SKIPPED;
      for (const d of this.graph.downstream[i] as readonly number[]) {
        if (!ok) this.upstreamNotOk[d] = 1;
        const left = (this.pendingUpstreams[d] as number) - 1;
        this.pendingUpstreams[d] = left;
        if (left !== 0 || this.state[d] !== QUEUED) continue;
        if (this.upstreamNotOk[d] === 1 && this.triggerRule(d) === 'all_success') {
          this.finish(d, UPSTREAM_FAILED);
          settled.push(d);
        } else {
          this.ready.push(d);
        }
      }
    }
    this.checkDone();
  }

  private triggerRule(i: number): TriggerRule {
    return this.dag.tasks[i]?.triggerRule ?? 'all_success';
  }

  private finish(i: number, finalState: number): void {
    this.state[i] = finalState;
    this.taskDeadlines.get(i)?.stop();
    if (this.startedAt[i] !== 0) this.endedAt[i] = Date.now();
    this.finished++;
    if (finalState === SUCCEEDED || finalState === SKIPPED) this.succeededCount++;
    else if (finalState === FAILED) this.failedCount++;
    else this.upstreamFailedCount++;
  }

  private checkDone(): void {
    if (this.finished !== this.n) return;
    this.runDeadline?.stop();
    this.resolveDone?.();
  }

  private details(): string {
    const parts = [`${this.succeededCount}/${this.n} tasks succeeded`, `${this.running} running`];
    if (this.failedCount > 0) parts.push(`${this.failedCount} failed`);
    if (this.upstreamFailedCount > 0) parts.push(`${this.upstreamFailedCount} upstream_failed`);
    if (this.runDeadline !== undefined) {
      parts.push(`deadline ${formatInstant(this.runDeadline.deadline)}${this.runDeadline.missed ? ' MISSED' : ''}`);
    }
    return `${this.dag.id} ${this.interval.start}..${this.interval.end}: ${parts.join(', ')}`;
  }
}

const NO_RETRY = { maximumAttempts: 1 } as const;

function activityFor(options: ResolvedTaskOptions, activityId: string): TaskActivity {
  if (options.local) {
    // Local activities take no activityId; the task id is in their input.
    const localOptions: LocalActivityOptions = {
      startToCloseTimeout: options.startToCloseTimeoutMs,
      retry: NO_RETRY,
    };
    return proxyLocalActivities(localOptions)[options.activity] as TaskActivity;
  }
  const activityOptions: ActivityOptions = {
    activityId,
    startToCloseTimeout: options.startToCloseTimeoutMs,
    retry: NO_RETRY,
    ...(options.heartbeatTimeoutMs === undefined ? {} : { heartbeatTimeout: options.heartbeatTimeoutMs }),
    ...(options.taskQueue === undefined ? {} : { taskQueue: options.taskQueue }),
  };
  return proxyActivities(activityOptions)[options.activity] as TaskActivity;
}

/**
 * The backoff before the next attempt, or undefined when the task has failed for good. Same
 * rules as Temporal's retry policy: non-retryable failures and error types stop at once, an
 * ApplicationFailure's nextRetryDelay overrides the computed backoff.
 */
function retryDelayMs(policy: ResolvedRetryPolicy, attempt: number, err: unknown): number | undefined {
  if (policy.maximumAttempts !== 0 && attempt >= policy.maximumAttempts) return undefined;
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) {
    if (cause.nonRetryable) return undefined;
    if (cause.type != null && policy.nonRetryableErrorTypes.includes(cause.type)) return undefined;
    if (cause.nextRetryDelay != null) {
      const ms = durationToMs(cause.nextRetryDelay as number);
      if (Number.isFinite(ms) && ms >= 0) return ms;
    }
  } else if (cause instanceof ServerFailure && cause.nonRetryable) {
    return undefined;
  }
  const backoff = policy.initialIntervalMs * policy.backoffCoefficient ** (attempt - 1);
  return Math.min(backoff, policy.maximumIntervalMs);
}

function errorMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause !== undefined) return errorMessage(err.cause);
  if (err instanceof TimeoutFailure) return `${err.timeoutType} timeout`;
  if (err instanceof Error) return err.message;
  return String(err);
}
