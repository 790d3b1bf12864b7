/**
 * The segflow worker on its task queue: the workflows bundle plus every activity,
 * wired to the clients the configuration describes.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createActivityRuntime, type ActivityDeps } from '../activities/index.js';
import { closeGcpClients, createGcpClients, type GcpClients } from '../stores/clients.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { temporalConnectionSettings } from '../core/temporal-connection.js';
import { assertDagActivitiesRegistered } from '../dags/dsl.js';
import { dagRegistry } from '../dags/index.js';
import { installRuntime } from './runtime.js';
import { activityMetricsInterceptor, metricsPorts, setSegmentHealthSource, startMetricsServer } from './metrics.js';
import { readSegmentHealth } from '../stores/model-registry.js';
import { logContractExtensions } from './contract-log.js';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
/**
 * Preloaded once per workflow thread and shared by every workflow run on it. Without this, each run
 * re-evaluates the registry, building and validating every DAG on every workflow start, which grows
 * with the size of the DAGs. Safe because DAG modules are pure, frozen data (see dags/index.ts).
 */
export const DAG_REGISTRY_PATH = fileURLToPath(new URL('../dags/index.ts', import.meta.url));
/** Sets the workflow sandbox's stack depth before the SDK freezes its built-ins (see the module). */
export const SANDBOX_SETUP_PATH = fileURLToPath(new URL('../workflows/sandbox-setup.ts', import.meta.url));
/**
 * How every segflow worker (and test harness) bundles the workflows. `dagModules` are a harness's
 * own DAGs (modules that call `registerDags`), preloaded after the registry so they extend it.
 */
export function workflowBundlerOptions(dagModules: readonly string[] = []) {
  return { preloadModules: [SANDBOX_SETUP_PATH, DAG_REGISTRY_PATH, ...dagModules] };
}

type ActivityFn = (...args: never[]) => Promise<unknown>;

/** DAGs outside the production registry (examples, benchmarks) and the activities behind them. */
export interface HarnessDags {
  /** Absolute paths of modules that call `registerDags`; loaded here and in the workflow sandbox. */
  readonly modules: readonly string[];
  readonly activities: Readonly<Record<string, ActivityFn>>;
}

/** Registers a harness's DAGs in this process, as its workflow bundle will. */
export async function loadHarnessDags(dags: HarnessDags | undefined): Promise<void> {
  for (const module of dags?.modules ?? []) await import(pathToFileURL(module).href);
}

export interface RunningWorker {
  worker: Worker;
  clients: GcpClients;
  /** Resolves when the worker has stopped (after shutdown()) and rejects if it failed. */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

export interface StartWorkerOptions {
  clients?: GcpClients;
  hooks?: ActivityDeps['hooks'];
  harnessDags?: HarnessDags;
}

export async function startWorker(config: Config, logger: Logger, opts: StartWorkerOptions = {}): Promise<RunningWorker> {
  installRuntime({ logger, metricsBindAddress: config.metrics.port === 0 ? undefined : `127.0.0.1:${config.metrics.port}` });
  // segflow's own metrics, on the port after Temporal's (workers/metrics.ts).
  const ports = metricsPorts(config);
  if (ports !== undefined) await startMetricsServer(ports.segflow);
  const clients = opts.clients ?? createGcpClients(config);
  if (ports !== undefined) setSegmentHealthSource(() => readSegmentHealth({ ...clients, config }));
  const connection = await NativeConnection.connect(temporalConnectionSettings(config));
  const runtime = createActivityRuntime({ config, clients, logger, hooks: opts.hooks });
  await loadHarnessDags(opts.harnessDags);
  const activities = { ...runtime.activities, ...opts.harnessDags?.activities };
  // A DAG naming an activity this worker lacks is a deployment error: refuse to start.
  for (const dag of dagRegistry.values()) assertDagActivitiesRegistered(dag, Object.keys(activities));
  let worker: Worker;
  try {
    worker = await Worker.create({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      workflowsPath: WORKFLOWS_PATH,
      bundlerOptions: workflowBundlerOptions(opts.harnessDags?.modules),
      activities,
      interceptors: { activity: [activityMetricsInterceptor] },
    });
  } catch (err) {
    await connection.close();
    if (!opts.clients) await closeGcpClients(clients);
    throw err;
  }
  logger.info({ taskQueue: config.temporal.taskQueue, namespace: config.temporal.namespace }, 'worker started');
  logContractExtensions(config, logger);
  const done = worker.run().finally(async () => {
    await runtime.close();
    await connection.close();
    if (!opts.clients) await closeGcpClients(clients);
  });
  return {
    worker,
    clients,
    done,
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}
