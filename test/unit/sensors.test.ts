import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DagValidationError } from '../../core/dag-graph.js';
import {
  describeSensorCondition,
  renderSensorCondition,
  sensorProblems,
  sensorTimeoutMessage,
  type SensorSpec,
} from '../../core/sensors.js';
import { defineDag, taskActivityName } from '../../dags/dsl.js';

const INTERVAL = { start: '2026-11-26T09:00:00Z', end: '2026-11-26T10:00:00Z' };

test('sensor conditions are templated with the data interval', () => {
  assert.deepEqual(renderSensorCondition({ kind: 'gcs_object', object: 'x/dt={{ ds }}/hour={{hour}}/{{ ds_nodash }}.ok' }, INTERVAL), {
    kind: 'gcs_object',
    object: 'x/dt=2026-11-26/hour=09/20261126.ok',
  });
  const partition = renderSensorCondition(
    { kind: 'bigquery_partition', dataset: 'marts', table: 't', column: 'ts', partition: '{{ ds }}', minRows: 5 },
    INTERVAL,
  );
  assert.equal(describeSensorCondition(partition), 'BigQuery marts.t partition ts=2026-11-26 with at least 5 rows');
  assert.equal(describeSensorCondition({ kind: 'gcs_prefix', prefix: 'raw/' }), 'a GCS object under gs://<lake bucket>/raw/');
  assert.equal(
    sensorTimeoutMessage({ kind: 'gcs_object', bucket: 'b', object: 'o' }, '2h', 1, undefined),
    'sensor timed out after 2h waiting for GCS object gs://b/o (1 poke); check the producer, then rerun the interval',
  );
});

test('invalid sensors name every problem, and defineDag refuses them', () => {
  const bad: SensorSpec = {
    condition: { kind: 'bigquery_partition', dataset: 'marts', table: 'a-b', column: 'ts', partition: '{{ dt }}', minRows: 0 },
    pokeInterval: '10m',
    timeout: '5m',
  };
  const problems = sensorProblems(bad);
  assert.deepEqual(problems, [
    'sensor.pokeInterval must not be longer than sensor.timeout',
    'sensor.condition.table must be a BigQuery identifier, found "a-b"',
    'sensor.condition.minRows must be an integer >= 1, found 0',
    'sensor.condition.partition must render to YYYY-MM-DD or YYYY-MM-DDTHH (e.g. "{{ ds }}"), found "{{ dt }}"',
    'sensor.condition uses {{ dt }}; known names: ds, ds_nodash, hour, data_interval_start, data_interval_end',
  ]);
  assert.deepEqual(
    sensorProblems({ condition: { kind: 'gcs_prefix', prefix: 'raw/dt={{ ds }}/' }, pokeInterval: '1m', timeout: '1h' }),
    [],
  );
  const dag = (sensor: SensorSpec) =>
    defineDag({
      id: 'sensing',
      interval: 'hourly',
      maxParallelism: 1,
      defaultTaskOptions: {
        retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 1 },
        startToCloseTimeout: '1m',
      },
      tasks: [{ id: 'wait', run: { sensor } }],
    });
  assert.throws(
    () => dag(bad),
    (err: unknown) => err instanceof DagValidationError && /a-b/.test(err.message) && /wait/.test(err.message),
  );
  const ok = dag({ condition: { kind: 'gcs_object', object: 'o' }, pokeInterval: 1000, timeout: '1m' });
  assert.equal(taskActivityName(ok.tasks[0] as (typeof ok.tasks)[number]), 'pokeSensor');
});
