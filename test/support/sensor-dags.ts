/**
 * Example DAGs with sensor tasks, for the sensor workflow tests (time-skipping server, long pokes)
 * and the sensor integration test (real GCS emulator, pokes of a second). Not in the production
 * registry; register-sensor-dags.ts adds them.
 */
import type { Duration } from '../../core/time.js';
import { defineDag, type DagDefinition, type DefaultTaskOptions } from '../../dags/dsl.js';
import { EXAMPLE_TASK_ACTIVITY } from './example-dags.js';

/** The bucket the integration test's sensors watch (the test creates it). */
export const SENSOR_TEST_BUCKET = 'segflow-test-sensors';
/** An activity that holds a worker slot for `args.ms` milliseconds (the integration test implements it). */
export const HOLD_SLOT_ACTIVITY = 'holdSlot';

const defaults: DefaultTaskOptions = {
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 2 },
  startToCloseTimeout: '30s',
};

/**
 * wait_for_export (sensor) -> load; cleanup runs once load is done, whatever its state. The export
 * is the `_SUCCESS` marker of the run's data interval.
 */
function sensorDag(id: string, pokeInterval: Duration, timeout: Duration): DagDefinition {
  return defineDag({
    id,
    description: `Waits for an export marker (poke every ${pokeInterval}, timeout ${timeout}), then loads it.`,
    interval: 'hourly',
    defaultTaskOptions: defaults,
    maxParallelism: 2,
    tasks: [
      {
        id: 'wait_for_export',
        run: {
          sensor: {
            condition: { kind: 'gcs_object', bucket: SENSOR_TEST_BUCKET, object: 'exports/dt={{ ds }}/hour={{ hour }}/_SUCCESS' },
            pokeInterval,
            timeout,
          },
        },
      },
      { id: 'load', run: { activity: EXAMPLE_TASK_ACTIVITY }, upstream: ['wait_for_export'] },
      { id: 'cleanup', run: { activity: EXAMPLE_TASK_ACTIVITY }, upstream: ['load'], triggerRule: 'all_done' },
    ],
  });
}

/** For the time-skipping server: minutes between pokes. */
export const exampleSensor = sensorDag('example_sensor', '5m', '1h');
export const exampleSensorTimeout = sensorDag('example_sensor_timeout', '5m', '20m');
/** For the real stack: a poke a second. */
export const exampleSensorLive = sensorDag('example_sensor_live', '1s', '60s');
export const exampleSensorLiveTimeout = sensorDag('example_sensor_live_timeout', '1s', '4s');

/** One task that holds a worker slot for a while: run beside a waiting sensor on a one-slot worker. */
export const exampleHoldSlot = defineDag({
  id: 'example_hold_slot',
  description: 'Holds one activity slot for three seconds.',
  interval: 'hourly',
  defaultTaskOptions: defaults,
  maxParallelism: 1,
  tasks: [{ id: 'hold', run: { activity: HOLD_SLOT_ACTIVITY, args: { ms: 3000 } } }],
});

export const sensorDags: readonly DagDefinition[] = [
  exampleSensor,
  exampleSensorTimeout,
  exampleSensorLive,
  exampleSensorLiveTimeout,
  exampleHoldSlot,
];
