/**
 * A worker on a test's own task queue that runs the real workflows (runDag, scheduledDagRun)
 * with trivial task activities: every activity any registered DAG names succeeds at once unless
 * the test overrides it. Schedules, backfills and alerting are then tested on the real dev
 * server without the warehouse behind the DAGs.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Config } from '../../core/config.js';
import { loadSegflowConfig } from '../../workers/segmentation-config.js';
import { createAssetActivities } from '../../activities/assets.js';
import { taskActivityName } from '../../dags/dsl.js';
import { dagRegistry } from '../../dags/index.js';
import { temporalConnectionSettings } from '../../core/temporal-connection.js';
import { createTemporalClient } from '../../workers/client.js';
import { WORKFLOWS_PATH, loadHarnessDags, workflowBundlerOptions } from '../../workers/worker.js';
import { exampleHarnessDags } from './example-activities.js';
import { installRuntime } from '../../workers/runtime.js';
import { createLogger } from '../../core/logger.js';

type ActivityFn = (...args: never[]) => Promise<unknown>;

export interface StubDagWorker {
  config: Config;
  client: Client;
  close(): Promise<void>;
}

/** Config with a unique task queue and schedule/run prefix for one test file. */
export function isolatedConfig(name: string, env: Record<string, string> = {}): Config {
  const id = randomUUID().slice(0, 8);
  return loadSegflowConfig({
    ...process.env,
    TEMPORAL_TASK_QUEUE: `test-${name}-${id}`,
    SEGFLOW_SCHEDULE_PREFIX: `test-${name}-${id}.`,
    SEGFLOW_METRICS_PORT: '0',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'error',
    ...env,
  });
}

export function stubDagActivities(): Record<string, ActivityFn> {
  const stubs: Record<string, ActivityFn> = {};
  for (const dag of dagRegistry.values()) {
    for (const task of dag.tasks) stubs[taskActivityName(task)] = async () => ({ stub: true });
  }
  stubs.raiseAlert = async () => ({ dedupKey: 'none', deliveries: [] });
  // The real one: a producer run tells its dependents' trackers (signalWithStart) through the worker's client.
  return { ...stubs, ...createAssetActivities() };
}

export async function startStubDagWorker(config: Config, activities: Record<string, ActivityFn> = {}): Promise<StubDagWorker> {
  installRuntime({ logger: createLogger({ level: config.log.level, name: 'test-dag-worker' }) });
  const examples = exampleHarnessDags();
  await loadHarnessDags(examples);
  const connection = await NativeConnection.connect(temporalConnectionSettings(config));
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    bundlerOptions: workflowBundlerOptions(examples.modules),
    activities: { ...stubDagActivities(), ...activities },
  });
  const running = worker.run();
  const client = await createTemporalClient(config);
  return {
    config,
    client,
    async close() {
      worker.shutdown();
      await running;
      await connection.close();
      await client.connection.close();
    },
  };
}
