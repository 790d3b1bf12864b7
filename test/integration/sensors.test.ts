/**
 * Sensor tasks on the real stack: a worker with a single activity slot runs DAGs whose sensor
 * watches the GCS emulator. The object is written after the run started; while the sensor waits,
 * another run's task holds that one slot from start to end, which it could not if the sensor held
 * a slot between pokes. A sensor whose object never comes fails at its timeout with one alert.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { alertDepsFromConfig, createAlertActivities, type AlertWebhookBody } from '../../activities/alerts.js';
import { createSensorActivities } from '../../activities/sensors.js';
import type { Config } from '../../core/config.js';
import type { DagTaskInput } from '../../core/dag-task.js';
import { createLogger } from '../../core/logger.js';
import { temporalConnectionSettings } from '../../core/temporal-connection.js';
import { closeGcpClients, createGcpClients, type GcpClients } from '../../stores/clients.js';
import {
  dagRunFailureDetails,
  dagRunWorkflowId,
  formatInstant,
  getTaskStatesQuery,
  type DagRunResult,
  type DagTaskState,
} from '../../workflows/dag-messages.js';
import type { runDag } from '../../workflows/run-dag.js';
import { createTemporalClient } from '../../workers/client.js';
import { installRuntime } from '../../workers/runtime.js';
import { WORKFLOWS_PATH, workflowBundlerOptions } from '../../workers/worker.js';
import { EXAMPLE_TASK_ACTIVITY } from '../support/example-dags.js';
import { HOLD_SLOT_ACTIVITY, SENSOR_TEST_BUCKET } from '../support/sensor-dags.js';
import '../support/register-sensor-dags.js';
import { testConfig } from '../support/stack.js';

const SENSOR_DAG_MODULE = fileURLToPath(new URL('../support/register-sensor-dags.ts', import.meta.url));

let config: Config;
let clients: GcpClients;
let client: Client;
let worker: Worker;
let running: Promise<void>;
let connection: NativeConnection;
let receiver: Server;
const alerts: AlertWebhookBody[] = [];
const holds: { startedAt: number; endedAt: number }[] = [];

before(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      alerts.push(JSON.parse(body) as AlertWebhookBody);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const alertUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/alerts`;
  config = testConfig('sensors', { SEGFLOW_ALERT_WEBHOOK_URLS: alertUrl });
  const logger = createLogger({ level: config.log.level, name: 'test-sensors' });
  installRuntime({ logger });
  clients = createGcpClients(config);
  const [exists] = await clients.storage.bucket(SENSOR_TEST_BUCKET).exists();
  if (!exists) await clients.storage.createBucket(SENSOR_TEST_BUCKET);
  connection = await NativeConnection.connect(temporalConnectionSettings(config));
  worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    bundlerOptions: workflowBundlerOptions([SENSOR_DAG_MODULE]),
    // One slot: a sensor that held it while waiting would starve every other task.
    maxConcurrentActivityTaskExecutions: 1,
    activities: {
      ...createSensorActivities({ ...clients, config, logger }),
      ...createAlertActivities(alertDepsFromConfig(config.alerts, logger, config.temporal.uiUrl)),
      [EXAMPLE_TASK_ACTIVITY]: async (input: DagTaskInput) => ({ taskId: input.taskId }),
      [HOLD_SLOT_ACTIVITY]: async (input: DagTaskInput) => {
        const startedAt = Date.now();
        await delay((input.args as { ms: number }).ms);
        holds.push({ startedAt, endedAt: Date.now() });
      },
    },
  });
  running = worker.run();
  client = await createTemporalClient(config);
});

after(async () => {
  worker?.shutdown();
  await running;
  await connection?.close();
  await client?.connection.close();
  if (clients) await closeGcpClients(clients);
  receiver?.close();
});

let seq = 0;
/** A fresh hour per run (so each has its own marker object and workflow id). */
function freshInterval() {
  const start = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000 * (1000 + seq++ + Math.floor(Math.random() * 100_000));
  return { start: formatInstant(start), end: formatInstant(start + 3_600_000) };
}

function markerOf(interval: { start: string }): string {
  return `exports/dt=${interval.start.slice(0, 10)}/hour=${interval.start.slice(11, 13)}/_SUCCESS`;
}

function startRun(dagId: string, interval: { start: string; end: string }): Promise<WorkflowHandle<typeof runDag>> {
  return client.workflow.start<typeof runDag>('runDag', {
    taskQueue: config.temporal.taskQueue,
    workflowId: `${dagRunWorkflowId(dagId, interval.start)}#${config.temporal.taskQueue}`,
    args: [{ dagId, interval, uiBaseUrl: config.temporal.uiUrl }],
  });
}

async function taskState(handle: WorkflowHandle<typeof runDag>, taskId: string): Promise<DagTaskState | undefined> {
  return (await handle.query(getTaskStatesQuery)).find((t) => t.taskId === taskId);
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await delay(200);
  }
}

test('a sensor waits for a GCS object written after the run started, holding no slot between pokes', async () => {
  const interval = freshInterval();
  const marker = markerOf(interval);
  const handle = await startRun('example_sensor_live', interval);
  const waiting = await until('the sensor to have poked once', async () => {
    const s = await taskState(handle, 'wait_for_export');
    return s?.state === 'sensing' && (s.sensor?.pokes ?? 0) >= 1 ? s : undefined;
  });
  assert.match(waiting.sensor?.lastObserved ?? '', new RegExp(`^no object gs://${SENSOR_TEST_BUCKET}/${marker}`));

  // Another run's task takes the worker's only slot for 3 s and must finish while the sensor waits.
  const hold = await startRun('example_hold_slot', interval);
  await hold.result();
  const duringHold = await taskState(handle, 'wait_for_export');
  assert.equal(duringHold?.state, 'sensing', 'the sensor was still waiting while the other task ran');
  const pokesBeforeObject = duringHold?.sensor?.pokes ?? 0;

  await clients.storage.bucket(SENSOR_TEST_BUCKET).file(marker).save('');
  const result = (await handle.result()) as DagRunResult;
  const tasks = new Map(result.tasks.map((t) => [t.taskId, t]));
  const sensor = tasks.get('wait_for_export');
  assert.equal(sensor?.state, 'succeeded');
  assert.equal(sensor?.attempts, 1);
  assert.match(sensor?.sensor?.lastObserved ?? '', new RegExp(`^found gs://${SENSOR_TEST_BUCKET}/${marker}`));
  assert.ok((sensor?.sensor?.pokes ?? 0) > pokesBeforeObject, 'the poke after the write found the object');
  assert.equal(tasks.get('load')?.state, 'succeeded');
  const held = holds.at(-1);
  assert.ok(held && held.startedAt >= Date.parse(sensor?.startedAt as string), 'the other task started after the sensor');
  assert.ok(held.endedAt <= Date.parse(sensor?.endedAt as string), 'and ended before it');

  // Every poke is its own short activity, with a timer before the next one.
  const events = (await handle.fetchHistory()).events ?? [];
  const pokes = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'pokeSensor').length;
  const timers = events.filter((e) => e.timerStartedEventAttributes != null).length;
  assert.equal(pokes, sensor?.sensor?.pokes);
  assert.equal(timers, pokes - 1);
});

test('a sensor whose GCS object never appears fails at its timeout, naming the object; one alert', async () => {
  const interval = freshInterval();
  const handle = await startRun('example_sensor_live_timeout', interval);
  const before = alerts.length;
  const err = await handle.result().then(
    () => assert.fail('expected the run to fail'),
    (e: unknown) => e,
  );
  const details = dagRunFailureDetails(err);
  assert.ok(details, `a DAG run failure, got ${String(err)}`);
  const tasks = new Map(details.tasks.map((t) => [t.taskId, t]));
  const sensor = tasks.get('wait_for_export');
  assert.equal(sensor?.state, 'failed');
  assert.match(
    sensor?.error ?? '',
    new RegExp(
      `^sensor timed out after 4s waiting for GCS object gs://${SENSOR_TEST_BUCKET}/${markerOf(interval)} \\(\\d+ pokes, last: no object`,
    ),
  );
  const waited = Date.parse(sensor?.endedAt as string) - Date.parse(sensor?.startedAt as string);
  assert.ok(waited >= 4_000 && waited < 15_000, `failed at its timeout (${waited} ms)`);
  assert.equal(tasks.get('load')?.state, 'upstream_failed');
  assert.equal(tasks.get('cleanup')?.state, 'succeeded');
  await until('the alert', async () => (alerts.length > before ? true : undefined), 10_000);
  assert.equal(alerts.length - before, 1);
  assert.match(JSON.stringify(alerts.at(-1)), /sensor timed out after 4s/);
});

test('the BigQuery partition poke counts a partition against its floor on the emulator', async () => {
  const dataset = `sensors_${Date.now().toString(36)}`;
  const logger = createLogger({ level: config.log.level, name: 'test-sensors' });
  const { pokeSensor } = createSensorActivities({ ...clients, config, logger });
  const poke = (partition: string, minRows?: number) =>
    pokeSensor({
      dagId: 'example',
      taskId: 'wait_for_partition',
      interval: { start: '2026-11-26T09:00:00Z', end: '2026-11-26T10:00:00Z' },
      condition: {
        kind: 'bigquery_partition',
        dataset,
        table: 'events',
        column: 'ts',
        partition,
        ...(minRows === undefined ? {} : { minRows }),
      },
      poke: 1,
    });
  await clients.bigquery.createDataset(dataset);
  try {
    assert.deepEqual(await poke('2026-11-26'), { met: false, observed: `table ${dataset}.events does not exist` });
    await clients.bigquery.dataset(dataset).createTable('events', {
      schema: [
        { name: 'id', type: 'STRING' },
        { name: 'ts', type: 'TIMESTAMP' },
      ],
      timePartitioning: { type: 'DAY', field: 'ts' },
    });
    assert.deepEqual(await poke('2026-11-26'), { met: false, observed: '0 rows in 2026-11-26 (floor 1)' });
    await clients.bigquery.query(
      `INSERT INTO \`${config.gcp.projectId}.${dataset}.events\` (id, ts) VALUES ('a', TIMESTAMP '2026-11-26 09:10:00+00'), ('b', TIMESTAMP '2026-11-26 10:20:00+00'), ('c', TIMESTAMP '2026-11-27 00:00:00+00')`,
    );
    assert.deepEqual(await poke('2026-11-26'), { met: true, observed: '2 rows in 2026-11-26 (floor 1)' });
    assert.deepEqual(await poke('2026-11-26', 3), { met: false, observed: '2 rows in 2026-11-26 (floor 3)' });
    assert.deepEqual(await poke('2026-11-26T09'), { met: true, observed: '1 row in 2026-11-26T09 (floor 1)' });
    assert.deepEqual(await poke('2026-11-26T11'), { met: false, observed: '0 rows in 2026-11-26T11 (floor 1)' });
  } finally {
    await clients.bigquery.dataset(dataset).delete({ force: true });
  }
});
