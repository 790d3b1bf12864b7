/**
 * The trivial activity behind the benchmark DAGs (dags/bench.ts). Registered on every worker like
 * any other DAG activity, so a benchmark run takes the same path as production tasks.
 */
import type { DagTaskInput } from '../dags/dsl.js';
import { BENCH_NOOP_ACTIVITY } from '../dags/bench.js';

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
