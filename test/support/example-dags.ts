/**
 * Example DAGs for the tests of the DAG runner, schedules, ops CLI and alerting: small shapes that
 * exercise fan-out, fan-in, local activities, retries and trigger rules with a no-op activity.
 * Not in the production registry; a harness adds them with register-example-dags.ts.
 */
import { defineDag, type DagDefinition, type DefaultTaskOptions } from '../../dags/dsl.js';

/** Activity behind the example DAGs: a no-op (see example-activities.ts). */
export const EXAMPLE_TASK_ACTIVITY = 'exampleTask';

const exampleDefaults: DefaultTaskOptions = {
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 2 },
  startToCloseTimeout: '5m',
};

/** extract -> (transform_a, transform_b as a SQL model) -> load */
export const exampleDiamond = defineDag({
  id: 'example_diamond',
  description: 'Two parallel branches joined by one task; shows fan-out, fan-in and a SQL-model task.',
  interval: 'hourly',
  defaultTaskOptions: exampleDefaults,
  maxParallelism: 4,
  tasks: [
    { id: 'extract', run: { activity: EXAMPLE_TASK_ACTIVITY } },
    { id: 'transform_a', run: { activity: EXAMPLE_TASK_ACTIVITY, args: { branch: 'a' } }, upstream: ['extract'] },
    { id: 'transform_b', run: { sqlModel: 'example_transform_b' }, upstream: ['extract'] },
    { id: 'load', run: { activity: EXAMPLE_TASK_ACTIVITY }, upstream: ['transform_a', 'transform_b'] },
  ],
});

/**
 * prepare (local) -> work -> publish, prepare -> side; cleanup runs once publish and side are
 * done, whatever their state. Shows per-task retry overrides, local activities and all_done.
 */
export const exampleCleanup = defineDag({
  id: 'example_cleanup',
  description: 'A pipeline with a cleanup task that runs even when the pipeline fails.',
  interval: 'daily',
  defaultTaskOptions: exampleDefaults,
  maxParallelism: 2,
  tasks: [
    { id: 'prepare', run: { activity: EXAMPLE_TASK_ACTIVITY }, local: true, startToCloseTimeout: '10s' },
    {
      id: 'work',
      run: { activity: EXAMPLE_TASK_ACTIVITY },
      upstream: ['prepare'],
      retry: { maximumAttempts: 3, initialInterval: '30s' },
    },
    { id: 'publish', run: { activity: EXAMPLE_TASK_ACTIVITY }, upstream: ['work'] },
    { id: 'side', run: { activity: EXAMPLE_TASK_ACTIVITY }, upstream: ['prepare'] },
    { id: 'cleanup', run: { activity: EXAMPLE_TASK_ACTIVITY }, upstream: ['publish', 'side'], triggerRule: 'all_done' },
  ],
});

/** start -> part_1..part_6 -> finish, built by code, with at most two tasks at a time. */
export const exampleFanout = defineDag({
  id: 'example_fanout',
  description: 'Six parallel tasks throttled by maxParallelism; the task list is computed.',
  interval: 'hourly',
  defaultTaskOptions: exampleDefaults,
  maxParallelism: 2,
  tasks: () => {
    const parts = Array.from({ length: 6 }, (_, i) => `part_${i + 1}`);
    return [
      { id: 'start', run: { activity: EXAMPLE_TASK_ACTIVITY } },
      ...parts.map((id) => ({ id, run: { activity: EXAMPLE_TASK_ACTIVITY }, upstream: ['start'], local: true })),
      { id: 'finish', run: { activity: EXAMPLE_TASK_ACTIVITY }, upstream: parts },
    ];
  },
});

export const exampleDags: readonly DagDefinition[] = [exampleDiamond, exampleCleanup, exampleFanout];
