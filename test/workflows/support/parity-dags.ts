/**
 * Example DAGs for the deadline, pool and sensor workflow tests. Registered by parity-workflows.ts
 * in the workflow bundle and by the tests in Node; not in the production registry.
 */
import { defineDag, type DagDefinition, type DefaultTaskOptions } from '../../../dags/dsl.js';
import { EXAMPLE_TASK_ACTIVITY } from '../../support/example-dags.js';

const defaults: DefaultTaskOptions = {
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1h', maximumAttempts: 3 },
  startToCloseTimeout: '5m',
};

/**
 * prepare -> slow -> publish; the run must be done 30 min after its interval, slow 10 min after.
 * slow waits 40 min before a second attempt, which holds a run past both deadlines.
 */
export const exampleDeadline = defineDag({
  id: 'example_deadline',
  description: 'A run and a task with deadlines relative to the end of the data interval.',
  interval: 'hourly',
  defaultTaskOptions: defaults,
  maxParallelism: 2,
  deadline: { after: '30m', severity: 'error' },
  tasks: [
    { id: 'prepare', run: { activity: EXAMPLE_TASK_ACTIVITY } },
    {
      id: 'slow',
      run: { activity: EXAMPLE_TASK_ACTIVITY },
      upstream: ['prepare'],
      deadline: { after: '10m' },
      retry: { initialInterval: '40m' },
    },
    { id: 'publish', run: { activity: EXAMPLE_TASK_ACTIVITY }, upstream: ['slow'] },
  ],
});

/** A daily run due at 05:00 Europe/Berlin the morning after its interval. */
export const exampleMorningDeadline = defineDag({
  id: 'example_morning_deadline',
  description: 'A deadline at a time of day in a zone.',
  interval: 'daily',
  schedule: { cron: '0 2 * * *', timezone: 'Europe/Berlin' },
  defaultTaskOptions: defaults,
  maxParallelism: 1,
  deadline: { at: '05:00' },
  tasks: [{ id: 'work', run: { activity: EXAMPLE_TASK_ACTIVITY } }],
});

export const parityDags: readonly DagDefinition[] = [exampleDeadline, exampleMorningDeadline];
