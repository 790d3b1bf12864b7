/**
 * The activity behind the example DAGs in dags/index.ts. It does nothing, so the examples can run
 * on any worker (demos, benchmarks of the DAG runner itself) without touching a cloud service.
 */
import type { DagTaskInput } from '../dags/dsl.js';
import { EXAMPLE_TASK_ACTIVITY } from '../dags/index.js';

export function createExampleDagActivities() {
  return {
    async [EXAMPLE_TASK_ACTIVITY](input: DagTaskInput): Promise<{ taskId: string }> {
      return { taskId: input.taskId };
    },
  };
}
