/**
 * The ELT layer against the real local emulators: lake objects in the GCS emulator, loaded and
 * transformed in the BigQuery emulator, features compared with numbers worked out by hand
 * (test/support/warehouse-fixtures.ts).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { createGcpClients, closeGcpClients, type GcpClients } from '../../stores/clients.js';
import { createWarehouseActivities, type SqlModelRunResult, type WarehouseActivities } from '../../activities/warehouse.js';
import { loadSqlProject } from '../../elt/load-project.js';
import { topologicalOrder } from '../../core/dag-graph.js';
import { loadConfig, type Config } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import { dataTestTaskId, sqlModelTasks } from '../../elt/dag-tasks.js';
import { buildSqlProject, parseSqlModel } from '../../elt/project.js';
import type { DataInterval } from '../../core/dag-task.js';
import {
  ALICE_SESSIONS_AFTER_H2,
  FEATURES_AFTER_H1,
  FEATURES_AFTER_H2,
  H1,
  H2,
  RAW_ROWS_AFTER_H1,
  RAW_ROWS_AFTER_H2,
  STAGED_EVENTS_AFTER_H2,
  eventId,
  writeLakeFixtures,
  type FeatureRow,
} from '../support/warehouse-fixtures.js';

const id = randomUUID().replace(/-/g, '').slice(0, 8);
const config: Config = loadConfig({
  ...process.env,
  SEGFLOW_DATASET_RAW: `raw_t${id}`,
  SEGFLOW_DATASET_STAGING: `staging_t${id}`,
  SEGFLOW_DATASET_MARTS: `marts_t${id}`,
  SEGFLOW_LAKE_BUCKET: `segflow-elt-${id}`,
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
});
const { raw, staging, marts } = config.warehouse;
const table = (dataset: string, name: string) => `\`${config.gcp.projectId}.${dataset}.${name}\``;

let clients: GcpClients;
let wh: WarehouseActivities;

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const [rows] = await clients.bigquery.query({ query: sql, location: config.gcp.location });
  return rows as Record<string, unknown>[];
}

async function count(dataset: string, name: string): Promise<number> {
  const [row] = await query(`SELECT COUNT(*) AS n FROM ${table(dataset, name)}`);
  return Number(row?.n);
}

/**
 * What the hourly DAG does for one interval: load, every model in ref() order, every model's
 * tests. One at a time: the emulator serializes requests and answers a request that waited
 * more than 15 s with "i/o timeout", which parallel models on a busy emulator do reach.
 */
async function runInterval(interval: DataInterval, { dataTests = true } = {}) {
  const loaded = await wh.loadRawEvents({ interval });
  const models = new Map<string, SqlModelRunResult>();
  for (const name of topologicalOrder(sqlModelTasks(loadSqlProject().models)))
    models.set(name, await wh.runSqlModel({ model: name, interval }));
  const tests = [];
  if (dataTests) for (const name of models.keys()) tests.push(await wh.runDataTests({ interval, args: { model: name } }));
  return { loaded, models, tests };
}

/** BigQuery values as plain JSON: timestamps as ISO strings, numbers as numbers. */
function plain(value: unknown): string | number | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number' || typeof value === 'string') return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'object' && 'value' in value) {
    const v = String((value as { value: unknown }).value);
    return /^\d{4}-\d{2}-\d{2}T/.test(v) ? new Date(v).toISOString() : Number(v);
  }
  return String(value);
}

function assertRowsMatch(actual: Record<string, unknown>[], expected: Record<string, FeatureRow>, key: string): void {
  const byKey = new Map(actual.map((r) => [String(r[key]), r]));
  assert.deepEqual([...byKey.keys()].sort(), Object.keys(expected).sort(), `${key}s present`);
  for (const [k, want] of Object.entries(expected)) {
    const got = byKey.get(k) as Record<string, unknown>;
    for (const [column, value] of Object.entries(want)) {
      const have = plain(got[column]);
      const expectedValue = typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value) ? new Date(value).toISOString() : value;
      if (typeof expectedValue === 'number' && typeof have === 'number') {
        assert.ok(Math.abs(have - expectedValue) < 1e-9, `${k}.${column}: expected ${expectedValue}, found ${have}`);
      } else {
        assert.equal(have, expectedValue, `${k}.${column}`);
      }
    }
  }
}

async function features(): Promise<Record<string, unknown>[]> {
  return query(`SELECT * FROM ${table(marts, 'customer_features')} ORDER BY customer_id`);
}

describe('ELT: lake -> raw.events -> staging -> facts -> customer_features', () => {
  before(async () => {
    clients = createGcpClients(config);
    await clients.storage.createBucket(config.lake.bucket);
    await writeLakeFixtures(clients.storage, config.lake.bucket);
    wh = createWarehouseActivities({
      bigquery: clients.bigquery,
      storage: clients.storage,
      config,
      logger: createLogger({ level: config.log.level, name: 'test-elt' }),
    });
  });

  after(async () => {
    if (clients === undefined) return;
    for (const dataset of [raw, staging, marts]) {
      await clients.bigquery
        .dataset(dataset)
        .delete({ force: true })
        .catch(() => undefined);
    }
    const bucket = clients.storage.bucket(config.lake.bucket);
    await bucket.deleteFiles({ force: true }).catch(() => undefined);
    await bucket.delete().catch(() => undefined);
    await closeGcpClients(clients);
  });

  test('ensureWarehouse creates the datasets and a partitioned, clustered raw.events, and is idempotent', async () => {
    const first = await wh.ensureWarehouse();
    assert.deepEqual(first.createdDatasets.sort(), [marts, raw, staging].sort());
    assert.equal(first.createdRawEvents, true);
    const second = await wh.ensureWarehouse();
    assert.deepEqual(second.createdDatasets, []);
    assert.equal(second.createdRawEvents, false);
    assert.deepEqual(second.addedColumns, []);
    const [metadata] = await clients.bigquery.dataset(raw).table('events').getMetadata();
    assert.deepEqual(metadata.timePartitioning, { type: 'DAY', field: 'ts' });
    assert.deepEqual(metadata.clustering, { fields: ['customer_id'] });
  });

  test('first arrival hour: features of every customer match the hand-computed values', async () => {
    const run = await runInterval(H1);
    assert.equal(run.loaded.objects, 2);
    assert.equal(run.loaded.rows, RAW_ROWS_AFTER_H1);
    assert.equal(await count(raw, 'events'), RAW_ROWS_AFTER_H1);
    assert.deepEqual(Object.fromEntries([...run.models].map(([name, m]) => [name, [m.action, m.rows]])), {
      stg_events: ['created', 13],
      fct_orders: ['created', 4],
      fct_sessions: ['created', 1],
      fct_email_interactions: ['created', 2],
      fct_app_sessions: ['created', 2],
      customer_features: ['created', 4],
    });
    assertRowsMatch(await features(), FEATURES_AFTER_H1, 'customer_id');
    const featureTests = run.tests.find((t) => t.model === 'customer_features');
    // bob and dave never sent a profile: a warning, not a failure.
    assert.deepEqual(featureTests?.warnings.length, 1);
    assert.match(featureTests?.warnings[0] ?? '', /has_country: 2 row\(s\)/);
  });

  test('second arrival hour: a redelivery, an in-hour duplicate and a 60-day-late event', async () => {
    const run = await runInterval(H2);
    assert.equal(run.loaded.objects, 2);
    assert.equal(run.loaded.rows, RAW_ROWS_AFTER_H2 - RAW_ROWS_AFTER_H1);
    assert.equal(await count(raw, 'events'), RAW_ROWS_AFTER_H2);
    assert.equal(await count(staging, 'events'), STAGED_EVENTS_AFTER_H2);
    // Rows the models computed for the interval: the touched customers' (alice, bob, carol) whole history.
    assert.deepEqual(Object.fromEntries([...run.models].map(([name, m]) => [name, [m.action, m.rows]])), {
      stg_events: ['merged', 10], // 11 deliveries, B5 twice
      fct_orders: ['delete+insert', 4], // o-a1, o-a2, o-b1, o-c1
      fct_sessions: ['delete+insert', 3],
      fct_email_interactions: ['delete+insert', 4], // alice c1, c2; bob c2; carol c1
      fct_app_sessions: ['delete+insert', 1],
      customer_features: ['merged', 3],
    });

    // The redelivered purchase: one staged row, the later delivery.
    const [b1] = await query(
      `SELECT received_at, message_id, _arrival_hour FROM ${table(staging, 'events')} WHERE event_id = '${eventId('B1')}'`,
    );
    assert.equal(plain(b1?.received_at), '2026-03-10T09:15:00.000Z');
    assert.equal(b1?.message_id, 'm-b1-second');
    // The duplicate within the hour: bob opened c2 once.
    const [bobC2] = await query(
      `SELECT opens FROM ${table(marts, 'fct_email_interactions')} WHERE customer_id = 'bob' AND campaign_id = 'c2'`,
    );
    assert.equal(Number(bobC2?.opens), 1);
    assert.equal(await count(marts, 'fct_orders'), 6);

    const sessions = await query(`SELECT * FROM ${table(marts, 'fct_sessions')} WHERE customer_id = 'alice' ORDER BY session_start`);
    assertRowsMatch(sessions, Object.fromEntries(ALICE_SESSIONS_AFTER_H2.map((s) => [String(s.session_id), s])), 'session_id');

    assertRowsMatch(await features(), FEATURES_AFTER_H2, 'customer_id');
  });

  test('rerunning the second hour changes nothing', async () => {
    const before = await features();
    // The data tests read and never write; the rerun skips them to spare the slow emulator.
    const rerun = await runInterval(H2, { dataTests: false });
    assert.equal(rerun.loaded.rows, RAW_ROWS_AFTER_H2 - RAW_ROWS_AFTER_H1);
    assert.equal(await count(raw, 'events'), RAW_ROWS_AFTER_H2);
    assert.equal(await count(staging, 'events'), STAGED_EVENTS_AFTER_H2);
    const again = await features();
    assert.deepEqual(
      again.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, plain(v)]))),
      before.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, plain(v)]))),
    );
    assertRowsMatch(again, FEATURES_AFTER_H2, 'customer_id');
  });

  test('a table model is created, then its contents replaced, then rebuilt when its columns change', async () => {
    const sql = (columns: string) =>
      `-- config: materialized=table, dataset=marts\nSELECT type, ${columns} FROM {{ ref('stg_events') }} WHERE ts < @interval_end GROUP BY type`;
    const withModel = (columns: string) =>
      createWarehouseActivities({
        bigquery: clients.bigquery,
        storage: clients.storage,
        config,
        logger: createLogger({ level: config.log.level, name: 'test-elt' }),
        project: buildSqlProject([...loadSqlProject().models, parseSqlModel({ name: 'event_type_counts', sql: sql(columns) })]),
      });
    const counts = async () =>
      Object.fromEntries(
        (await query(`SELECT * FROM ${table(marts, 'event_type_counts')} ORDER BY type`)).map((r) => [
          r.type,
          Object.values(r).slice(1).map(plain),
        ]),
      );

    const v1 = withModel('COUNT(*) AS n');
    assert.equal((await v1.runSqlModel({ model: 'event_type_counts', interval: H1 })).action, 'created');
    // Staged events with an event time before 09:00: every H1 event, and carol's late purchase.
    assert.deepEqual(await counts(), {
      add_to_cart: [1],
      app_session: [2],
      email_click: [1],
      email_open: [2],
      page_view: [1],
      profile_update: [2],
      purchase: [5], // A2, B1, D1, D2 and carol's late C3
    });
    assert.equal((await v1.runSqlModel({ model: 'event_type_counts', interval: H2 })).action, 'replaced');
    const v2 = withModel('COUNT(*) AS n, COUNT(DISTINCT customer_id) AS customers');
    assert.equal((await v2.runSqlModel({ model: 'event_type_counts', interval: H2 })).action, 'rebuilt');
    assert.deepEqual(await counts(), {
      add_to_cart: [1, 1],
      app_session: [2, 2],
      click: [1, 1],
      email_click: [1, 1],
      email_open: [4, 3], // A3, A12, B5, C2
      page_view: [4, 2],
      profile_update: [3, 2],
      purchase: [6, 4],
    });
  });

  test('an hour without lake objects loads nothing and leaves other hours alone', async () => {
    const result = await wh.loadRawEvents({ interval: { start: '2026-03-10T10:00:00Z', end: '2026-03-10T11:00:00Z' } });
    assert.deepEqual(result.hours, [{ hour: '2026-03-10T10:00:00.000Z', objects: 0, rows: 0 }]);
    assert.equal(await count(raw, 'events'), RAW_ROWS_AFTER_H2);
  });

  test('a failing error-severity test fails its task, naming the test and the count', async () => {
    await query(
      `INSERT INTO ${table(staging, 'events')} (event_id, customer_id, type, ts, properties, message_id, publish_time, received_at, _arrival_hour) ` +
        `SELECT event_id, customer_id, type, ts, properties, 'm-injected', publish_time, received_at, _arrival_hour FROM ${table(staging, 'events')} WHERE event_id = '${eventId('A2')}'`,
    );
    await assert.rejects(
      () => wh.runDataTests({ interval: H2, args: { model: 'stg_events' } }),
      (err: unknown) => {
        assert.ok(err instanceof ApplicationFailure, 'an ApplicationFailure');
        assert.equal(err.type, 'DataTestFailed');
        assert.equal(err.nonRetryable, true);
        assert.match(err.message, /stg_events/);
        assert.match(err.message, /unique_event_id \(1\)/);
        return true;
      },
    );
    assert.equal(dataTestTaskId('stg_events'), 'test_stg_events');
  });

  test('unknown models and bad intervals fail without retry', async () => {
    await assert.rejects(
      () => wh.runSqlModel({ model: 'nope', interval: H1 }),
      (err: unknown) => err instanceof ApplicationFailure && err.type === 'UnknownSqlModel' && err.nonRetryable === true,
    );
    await assert.rejects(
      () => wh.loadRawEvents({ interval: { start: '2026-03-10T09:30:00Z', end: '2026-03-10T10:00:00Z' } }),
      (err: unknown) => err instanceof ApplicationFailure && err.type === 'InvalidDataInterval',
    );
  });
});
