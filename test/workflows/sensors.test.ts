import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { type SensorPokeInput, type SensorPokeResult } from '../../core/sensors.js';
import { formatTasks } from '../../schedules/ops-format.js';
import { dagRunFailureDetails, getTaskStatesQuery, type DagRunResult, type DagTaskState } from '../../workflows/dag-messages.js';
import { SENSOR_TEST_BUCKET } from '../support/sensor-dags.js';
import '../support/register-sensor-dags.js';
import { createDagTestKit, recordingActivities, type DagTestKit } from './support/dag-test-kit.js';

const INTERVAL = { start: '2026-11-26T09:00:00Z', end: '2026-11-26T10:00:00Z' };
const MARKER = `exports/dt=2026-11-26/hour=09/_SUCCESS`;

/** A pokeSensor that finds the object from poke `metAt` on (never when undefined), recording each poke. */
function pokes(metAt: number | undefined) {
  const seen: SensorPokeInput[] = [];
  return {
    seen,
    pokeSensor: async (input: SensorPokeInput): Promise<SensorPokeResult> => {
      seen.push(input);
      const met = metAt !== undefined && input.poke >= metAt;
      return { met, observed: met ? 'found it' : `no object gs://${SENSOR_TEST_BUCKET}/${MARKER}` };
    },
  };
}

const byId = (tasks: readonly DagTaskState[]) => new Map(tasks.map((t) => [t.taskId, t]));

describe('DAG sensors', () => {
  let kit: DagTestKit;
  before(async () => {
    kit = await createDagTestKit();
  });
  after(async () => {
    await kit?.teardown();
  });

  test('a sensor waits on a timer between pokes, shows as sensing, and succeeds when the object appears', async () => {
    const fake = recordingActivities();
    const poke = pokes(3);
    const { result, history, sensing } = await kit.withWorker({ ...fake.activities, pokeSensor: poke.pokeSensor }, async (start) => {
      const handle = await start({ dagId: 'example_sensor', interval: INTERVAL });
      // Queries do not skip time: the run sits on the timer after its first poke until result() is awaited.
      let sensing: DagTaskState | undefined;
      for (let i = 0; i < 100 && sensing?.sensor?.nextPokeAt === undefined; i++) {
        sensing = byId(await handle.query(getTaskStatesQuery)).get('wait_for_export');
        if (sensing?.sensor?.nextPokeAt === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      const result = (await handle.result()) as DagRunResult;
      return { result, history: await handle.fetchHistory(), sensing };
    });

    assert.equal(sensing?.state, 'sensing');
    assert.equal(sensing?.sensor?.pokes, 1);
    assert.match(
      sensing?.sensor?.condition ?? '',
      new RegExp(`GCS object gs://${SENSOR_TEST_BUCKET}/exports/dt=2026-11-26/hour=09/_SUCCESS`),
    );
    assert.match(sensing?.sensor?.lastObserved ?? '', /^no object/);
    const nextIn = Date.parse(sensing?.sensor?.nextPokeAt as string) - Date.parse(sensing?.startedAt as string);
    assert.ok(nextIn >= 5 * 60_000 && nextIn < 5 * 60_000 + 5_000, `next poke one poke interval after the first (${nextIn} ms)`);
    assert.match(formatTasks([sensing as DagTaskState]), /sensing \(poke 1, next 2026-/);

    const tasks = byId(result.tasks);
    assert.equal(tasks.get('wait_for_export')?.state, 'succeeded');
    assert.equal(tasks.get('wait_for_export')?.attempts, 1, 'the whole wait is one attempt');
    assert.equal(tasks.get('wait_for_export')?.sensor?.pokes, 3);
    assert.equal(tasks.get('load')?.state, 'succeeded');
    assert.deepEqual(
      poke.seen.map((p) => [p.poke, p.condition.kind === 'gcs_object' ? p.condition.object : '']),
      [1, 2, 3].map((n) => [n, MARKER]),
      'the condition reaches the poke with its templates filled in',
    );
    // Three short poke activities and two timers between them: nothing ran while the sensor waited.
    const events = history.events ?? [];
    const pokeActivities = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'pokeSensor');
    assert.equal(pokeActivities.length, 3);
    assert.deepEqual(
      pokeActivities.map((e) => e.activityTaskScheduledEventAttributes?.activityId),
      ['wait_for_export.poke1', 'wait_for_export.poke2', 'wait_for_export.poke3'],
    );
    assert.equal(events.filter((e) => e.timerStartedEventAttributes != null).length, 2);
    const waited =
      Date.parse(tasks.get('wait_for_export')?.endedAt as string) - Date.parse(tasks.get('wait_for_export')?.startedAt as string);
    assert.ok(waited >= 10 * 60_000, `two poke intervals passed on timers (${waited} ms)`);
  });

  test('a sensor whose object never appears fails at its timeout naming the condition; trigger rules and one alert follow', async () => {
    const fake = recordingActivities();
    const poke = pokes(undefined);
    const err = await kit
      .withWorker({ ...fake.activities, pokeSensor: poke.pokeSensor }, async (start) =>
        (await start({ dagId: 'example_sensor_timeout', interval: INTERVAL })).result(),
      )
      .then(
        () => assert.fail('expected the run to fail'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, String(err));
    const details = dagRunFailureDetails(err);
    assert.ok(details, 'the failure carries the run details');
    const tasks = byId(details.tasks);
    const sensor = tasks.get('wait_for_export');
    assert.equal(sensor?.state, 'failed');
    assert.equal(sensor?.attempts, 1, 'a timeout is not retried');
    assert.match(
      sensor?.error ?? '',
      new RegExp(
        `^sensor timed out after 20m waiting for GCS object gs://${SENSOR_TEST_BUCKET}/exports/dt=2026-11-26/hour=09/_SUCCESS \\(5 pokes, last: no object`,
      ),
    );
    // Pokes at 0, 5, 10, 15 and 20 minutes: the last one at the timeout itself.
    assert.equal(poke.seen.length, 5);
    assert.equal(sensor?.sensor?.pokes, 5);
    assert.equal(sensor?.sensor?.nextPokeAt, undefined);
    assert.equal(tasks.get('load')?.state, 'upstream_failed');
    assert.equal(tasks.get('cleanup')?.state, 'succeeded', 'all_done runs after a sensor timeout');
    assert.equal(fake.alerts.length, 1);
    assert.equal(fake.alerts[0]?.kind, 'dag_run_failed');
    assert.match(JSON.stringify(fake.alerts[0]), /sensor timed out after 20m/);
  });
});
