/**
 * The trivial activity behind the benchmark DAGs (bench/dags.ts). Registered only by the benchmark's worker, like
 * any other DAG activity, so a benchmark run takes the same path as production tasks.
 */
import { fileURLToPath } from 'node:url';
import type { DagTaskInput } from '../core/dag-task.js';
import type { HarnessDags } from '../workers/worker.js';
import { BENCH_NOOP_ACTIVITY } from './dags.js';

export interface BenchHooks {
  /** Called once per execution with the time spent in the task's own work, for `npm run bench:dag`. */
  onTaskWork?(dagId: string, taskId: string, workMs: number): void;
}

export function createBenchActivities(hooks: BenchHooks = {}) {
  return {
    async [BENCH_NOOP_ACTIVITY](input: DagTaskInput): Promise<{ taskId: string }> {
      const started = performance.now();
      const result = { taskId: input.taskId };
      hooks.onTaskWork?.(input.dagId, input.taskId, performance.now() - started);
      return result;
    },
  };
}

/** The module that adds the benchmark DAGs to a registry. */
export const BENCH_DAG_MODULE = fileURLToPath(new URL('./register-dags.ts', import.meta.url));

/** The benchmark DAGs for a worker (startWorker's `harnessDags`). */
export function benchHarnessDags(hooks: BenchHooks = {}): HarnessDags {
  return { modules: [BENCH_DAG_MODULE], activities: createBenchActivities(hooks) };
}
