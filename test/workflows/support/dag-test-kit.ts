/**
 * What the deadline, pool and sensor workflow tests share: one time-skipping server, one workflow
 * bundle with the parity DAGs, and a fresh worker on its own task queue per test.
 */
import { fileURLToPath } from 'node:url';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import {
  DefaultLogger,
  Runtime,
  Worker,
  bundleWorkflowCode,
  type WorkerOptions,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import type { Alert } from '../../../core/alerts.js';
import type { DagTaskInput, SqlModelTaskInput } from '../../../core/dag-task.js';
import { dagRunWorkflowId, type DagRunResult, type RunDagInput } from '../../../workflows/dag-messages.js';
import { runDag } from '../../../workflows/index.js';
import { createTimeSkippingEnv } from '../../support/test-env.js';
import './register-parity-dags.js';
import '../../support/register-example-dags.js';

const WORKFLOWS_PATH = fileURLToPath(new URL('./parity-workflows.ts', import.meta.url));

export type TaskBehavior = (input: DagTaskInput, call: number) => unknown;

/** Fake DAG activities: count calls per task, run a per-task behavior, record inputs, order and alerts. */
export function recordingActivities(behaviors: Record<string, TaskBehavior> = {}) {
  const calls = new Map<string, number>();
  const inputs: DagTaskInput[] = [];
  const alerts: Alert[] = [];
  const log: string[] = [];
  let active = 0;
  let maxActive = 0;
  const run = async (input: DagTaskInput): Promise<void> => {
    const call = (calls.get(input.taskId) ?? 0) + 1;
    calls.set(input.taskId, call);
    inputs.push(input);
    active++;
    maxActive = Math.max(maxActive, active);
    log.push(`start ${input.taskId}`);
    try {
      await behaviors[input.taskId]?.(input, call);
    } finally {
      active--;
      log.push(`end ${input.taskId}`);
    }
  };
  return {
    calls: (taskId: string) => calls.get(taskId) ?? 0,
    inputs,
    alerts,
    log,
    maxActive: () => maxActive,
    activities: {
      exampleTask: run,
      runSqlModel: (input: SqlModelTaskInput) => run(input),
      // Answers like activities/alerts.ts (its delivery report), which the metrics interceptor reads.
      raiseAlert: async (alert: Alert) => {
        alerts.push(alert);
        return { dedupKey: alert.dedupKey, deliveries: [] };
      },
    },
  };
}

export interface DagTestKit {
  readonly env: TestWorkflowEnvironment;
  /** Runs `body` while a fresh worker with `activities` serves its own task queue. */
  withWorker<T>(activities: object, body: (start: StartRun, taskQueue: string) => Promise<T>, options?: KitWorkerOptions): Promise<T>;
  /** Starts one run on a fresh worker and returns its result. */
  runToEnd(activities: object, input: RunDagInput): Promise<DagRunResult>;
  teardown(): Promise<void>;
}

export type KitWorkerOptions = Pick<WorkerOptions, 'interceptors'>;

export type StartRun = (input: RunDagInput, workflowId?: string) => ReturnType<TestWorkflowEnvironment['client']['workflow']['start']>;

export async function createDagTestKit(): Promise<DagTestKit> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const [env, bundle]: [TestWorkflowEnvironment, WorkflowBundleWithSourceMap] = await Promise.all([
    createTimeSkippingEnv(),
    bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('ERROR') }),
  ]);
  let queue = 0;
  const kit: DagTestKit = {
    env,
    runToEnd: (activities, input) => kit.withWorker(activities, async (start) => (await start(input)).result() as Promise<DagRunResult>),
    async withWorker(activities, body, options = {}) {
      const taskQueue = `parity-${++queue}`;
      const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: bundle, activities, ...options });
      const start: StartRun = (input, workflowId) =>
        env.client.workflow.start(runDag, {
          taskQueue,
          workflowId: workflowId ?? `${dagRunWorkflowId(input.dagId, input.interval?.start ?? '2026-11-26T09:00:00Z')}#${taskQueue}`,
          args: [input],
        });
      return worker.runUntil(body(start, taskQueue));
    },
    teardown: () => env.teardown(),
  };
  return kit;
}

/** The hour ending now on the test server's clock (whole seconds), so deadlines are in its future. */
export async function lastHour(env: TestWorkflowEnvironment): Promise<{ start: string; end: string }> {
  const now = await env.currentTimeMs();
  const end = now - (now % 1000);
  return { start: new Date(end - 3_600_000).toISOString(), end: new Date(end).toISOString() };
}
