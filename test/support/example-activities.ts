/**
 * The activity behind the example DAGs in example-dags.ts. It does nothing, so the examples can run
 * on any worker (demos, benchmarks of the DAG runner itself) without touching a cloud service.
 */
import { fileURLToPath } from 'node:url';
import type { DagTaskInput } from '../../core/dag-task.js';
import type { HarnessDags } from '../../workers/worker.js';
import { EXAMPLE_TASK_ACTIVITY } from './example-dags.js';

export function createExampleDagActivities() {
  return {
    async [EXAMPLE_TASK_ACTIVITY](input: DagTaskInput): Promise<{ taskId: string }> {
      return { taskId: input.taskId };
    },
  };
}

/** The module that adds the example DAGs to a registry. */
export const EXAMPLE_DAG_MODULE = fileURLToPath(new URL('./register-example-dags.ts', import.meta.url));

/** The example DAGs for a worker (startWorker's `harnessDags`). */
export function exampleHarnessDags(): HarnessDags {
  return { modules: [EXAMPLE_DAG_MODULE], activities: createExampleDagActivities() };
}
