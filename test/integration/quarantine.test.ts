import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROJECT_ROOT } from '../../core/config.js';
import { after, before, describe, test } from 'node:test';
import { createIngestActivities } from '../../activities/ingest.js';
import { createWarehouseActivities } from '../../activities/warehouse.js';
import { createStorage } from '../../stores/clients.js';
import { openTopic, publishAll, type OutgoingMessage } from '../../scripts/lib/publisher.js';
import { followReplay, quarantineSummary, startReplay, type QuarantineContext } from '../../schedules/quarantine-lib.js';
import type { IngestCounters } from '../../workflows/ingest-messages.js';
import { readLake } from '../support/ingest-fixtures.js';
import { createLogger } from '../../core/logger.js';
import { createTriggerListener } from '../../workers/trigger-listener.js';
import { metricsText } from '../../workers/metrics.js';
import { startHarness, type IntegrationHarness } from '../support/stack.js';

const isolated = (id: string) => ({
  SEGFLOW_DATASET_RAW: `raw_q_${id}`,
  SEGFLOW_DATASET_STAGING: `staging_q_${id}`,
  SEGFLOW_DATASET_MARTS: `marts_q_${id}`,
  SEGFLOW_EVENTS_TOPIC: `t-q-${id}`,
  SEGFLOW_LAKE_SUBSCRIPTION: `t-q-${id}-lake`,
  SEGFLOW_TRIGGER_SUBSCRIPTION: `t-q-${id}-triggers`,
  SEGFLOW_LAKE_BUCKET: `segflow-test-q-${id}`,
  SEGFLOW_SCHEDULE_PREFIX: `q-${id}-`,
  SEGFLOW_INGEST_ACK_DEADLINE_S: '10',
});
const env = isolated(randomUUID().slice(0, 8));
const EXTENDED = { SEGFLOW_EVENT_CONTRACT_EXTENSIONS: '{"enumValues": {"profile_update.income_band": ["mid"]}}' };

function profileUpdate(customer: number, band: string): { message: OutgoingMessage; eventId: string } {
  const eventId = randomUUID();
  const event = {
    event_id: eventId,
    customer_id: `cust-q${String(customer).padStart(4, '0')}`,
    type: 'profile_update',
    ts: new Date(Date.now() - 60_000).toISOString(),
    properties: { age: 30 + (customer % 20), country: 'DE', income_band: band },
  };
  return {
    eventId,
    message: { data: Buffer.from(JSON.stringify(event)), attributes: { type: 'profile_update', event_id: eventId, schema: 'v1' } },
  };
}

async function ingestAll(h: IntegrationHarness): Promise<IngestCounters> {
  const handle = await h.client.workflow.start('ingestEvents', {
    taskQueue: h.config.temporal.taskQueue,
    workflowId: `${h.config.schedules.prefix}ingest/${h.config.pubsub.lakeSubscription}`,
    args: [
      {
        subscription: h.config.pubsub.lakeSubscription,
        maxMessages: h.config.ingest.batchSize,
        maxWaitMs: h.config.ingest.maxWaitMs,
        concurrency: 1,
        stopWhenIdle: true,
      },
    ],
  });
  return (await handle.result()) as IngestCounters;
}

const rangeFrom = () => new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000).toISOString();
const rangeTo = () => new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 + 2 * 3_600_000).toISOString();

describe('quarantine: inspect, extend the contract, replay', () => {
  let h: IntegrationHarness;
  const mid = Array.from({ length: 40 }, (_, i) => profileUpdate(i, 'mid'));
  const huge = Array.from({ length: 7 }, (_, i) => profileUpdate(100 + i, 'huge'));
  const from = rangeFrom();
  const to = rangeTo();
  const ctx = (): QuarantineContext => ({ client: h.client, config: h.config, storage: createStorage(h.config) });
  const staging = () => `\`${h.config.gcp.projectId}.${h.config.warehouse.staging}.events\``;
  const stagedMid = async () => {
    const [rows] = await h.worker.clients.bigquery.query({
      query: `SELECT event_id, COUNT(*) AS n FROM ${staging()} WHERE event_id IN UNNEST(@ids) GROUP BY event_id`,
      params: { ids: mid.map((m) => m.eventId) },
    });
    return rows as Array<{ event_id: string; n: number }>;
  };

  before(async () => {
    h = await startHarness('quarantine', { env });
    await createIngestActivities({
      pubsub: h.worker.clients.pubsub,
      storage: h.worker.clients.storage,
      config: h.config,
      logger: h.logger,
    }).ensureIngestResources();
    await createWarehouseActivities({
      bigquery: h.worker.clients.bigquery,
      storage: h.worker.clients.storage,
      config: h.config,
      logger: h.logger,
    }).ensureWarehouse();
  });
  after(async () => h?.close());

  test('an unknown income band is quarantined; the summary equals a direct read of the quarantine objects', async () => {
    await publishAll(
      await openTopic(h.worker.clients.pubsub, h.config.pubsub.topic),
      [...mid, ...huge].map((m) => m.message),
    );
    const counters = await ingestAll(h);
    assert.equal(counters.quarantined, 47);
    const lake = await readLake(h.worker.clients.storage, h.config.lake.bucket);
    const summary = await quarantineSummary(ctx(), { from, to });
    assert.equal(summary.messages, lake.quarantine.length);
    const direct: Record<string, number> = {};
    for (const q of lake.quarantine) for (const c of new Set(q.reasons.map((r) => r.code))) direct[c] = (direct[c] ?? 0) + 1;
    assert.deepEqual(summary.byReason, direct);
    const band = summary.byReasonPath.find((r) => r.path === 'properties.income_band');
    assert.deepEqual(band?.topValues, [
      { value: '"mid"', messages: 40 },
      { value: '"huge"', messages: 7 },
    ]);
  });

  test('without an extension a replay recovers nothing and changes nothing', async () => {
    const before = await readLake(h.worker.clients.storage, h.config.lake.bucket);
    const started = await startReplay(ctx(), { from, to }, undefined);
    const result = await followReplay(ctx(), started.workflowId, { pollMs: 500 });
    assert.equal(result.nothingToRecover, true);
    assert.equal(result.examined, 47);
    const afterLake = await readLake(h.worker.clients.storage, h.config.lake.bucket);
    assert.equal(afterLake.raw.length, before.raw.length);
    assert.equal(afterLake.quarantine.length, before.quarantine.length);
  });

  test('after the extension, a replay brings every "mid" event into staging exactly once and into the features; again adds nothing', async () => {
    await h.close();
    h = await startHarness('quarantine-ext', { env: { ...env, ...EXTENDED } });
    const started = await startReplay(ctx(), { from, to }, undefined);
    const progress: string[] = [];
    const result = await followReplay(ctx(), started.workflowId, { pollMs: 500, onProgress: (p) => progress.push(p.phase) });
    assert.equal(result.recovered, 40, JSON.stringify(result));
    assert.equal(result.stillInvalid, 7);
    assert.equal(result.triggers, 40);
    assert.ok(result.hours.length >= 1);
    const staged = await stagedMid();
    assert.equal(staged.length, 40);
    assert.ok(staged.every((r) => Number(r.n) === 1));
    const [features] = await h.worker.clients.bigquery.query({
      query: `SELECT COUNT(*) AS n FROM \`${h.config.gcp.projectId}.${h.config.warehouse.marts}.customer_features\` WHERE income_band = 'mid'`,
    });
    assert.equal(Number((features as Array<{ n: number }>)[0]?.n), 40, `reruns: ${JSON.stringify(result.reruns)}`);

    const summary = await quarantineSummary(ctx(), { from, to });
    assert.equal(summary.messages, 7);
    assert.equal(summary.recovered, 40);
    assert.deepEqual(summary.byReasonPath.find((r) => r.path === 'properties.income_band')?.topValues, [{ value: '"huge"', messages: 7 }]);

    const again = await followReplay(ctx(), (await startReplay(ctx(), { from, to }, undefined)).workflowId, { pollMs: 500 });
    assert.equal(again.nothingToRecover, true);
    assert.equal(again.recovered, 0);
    assert.deepEqual(
      (await stagedMid()).map((r) => Number(r.n)),
      mid.map(() => 1),
    );
  });
});

describe('quarantine replay survives SIGKILL of the worker', () => {
  const killEnv = {
    ...isolated(randomUUID().slice(0, 8)),
    TEMPORAL_TASK_QUEUE: `test-qkill-${randomUUID().slice(0, 8)}`,
    SEGFLOW_METRICS_PORT: '0',
    LOG_LEVEL: 'warn',
    // Small batches give many quarantine objects, so the kill lands among them.
    SEGFLOW_INGEST_BATCH_SIZE: '5',
  };
  const children: ChildProcess[] = [];
  const startWorkerProcess = (extra: Record<string, string> = {}) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...killEnv, ...extra },
      stdio: 'ignore',
    });
    children.push(child);
    return child;
  };
  after(() => {
    for (const c of children) c.kill('SIGKILL');
  });

  test('a worker killed mid-replay is replaced and every recovered event is in staging exactly once', async () => {
    const h = await startHarness('qkill-client', { env: { ...killEnv, TEMPORAL_TASK_QUEUE: `unused-${randomUUID().slice(0, 8)}` } });
    const config = { ...h.config, temporal: { ...h.config.temporal, taskQueue: killEnv.TEMPORAL_TASK_QUEUE } };
    const qctx: QuarantineContext = { client: h.client, config, storage: createStorage(config) };
    try {
      await createIngestActivities({
        pubsub: h.worker.clients.pubsub,
        storage: h.worker.clients.storage,
        config,
        logger: h.logger,
      }).ensureIngestResources();
      await createWarehouseActivities({
        bigquery: h.worker.clients.bigquery,
        storage: h.worker.clients.storage,
        config,
        logger: h.logger,
      }).ensureWarehouse();
      const events = Array.from({ length: 60 }, (_, i) => profileUpdate(500 + i, 'mid'));
      await publishAll(
        await openTopic(h.worker.clients.pubsub, config.pubsub.topic),
        events.map((e) => e.message),
      );
      const plain = startWorkerProcess();
      const counters = await ingestAll({ ...h, config });
      assert.equal(counters.quarantined, 60);
      plain.kill('SIGTERM');
      await new Promise((r) => plain.once('exit', r));

      const first = startWorkerProcess(EXTENDED);
      const started = await startReplay(qctx, { from: rangeFrom(), to: rangeTo() }, undefined);
      let killedAt: string | undefined;
      const result = followReplay(qctx, started.workflowId, {
        pollMs: 200,
        onProgress: (p) => {
          if (killedAt === undefined && p.phase === 'replaying' && p.objectsDone > 0) {
            killedAt = `${p.objectsDone}/${p.objects}`;
            first.kill('SIGKILL');
            void sleep(500).then(() => startWorkerProcess(EXTENDED));
          }
        },
      });
      const done = await result;
      assert.ok(killedAt !== undefined, 'the worker was killed during the replay');
      assert.equal(done.recovered, 60, `killed at ${killedAt}: ${JSON.stringify(done)}`);
      const [rows] = await h.worker.clients.bigquery.query({
        query: `SELECT event_id, COUNT(*) AS n FROM \`${config.gcp.projectId}.${config.warehouse.staging}.events\` WHERE event_id IN UNNEST(@ids) GROUP BY event_id`,
        params: { ids: events.map((e) => e.eventId) },
      });
      assert.equal((rows as unknown[]).length, 60);
      assert.ok((rows as Array<{ n: number }>).every((r) => Number(r.n) === 1));
      const lake = await readLake(h.worker.clients.storage, config.lake.bucket);
      assert.equal(lake.quarantine.length, 0);
      assert.equal(new Set(lake.raw.map((r) => r.event_id)).size, 60);
    } finally {
      await h.close();
    }
  });
});

describe('bad input is counted, not logged per message', () => {
  test('3,000 invalid key events through the trigger listener: 2 warning lines and per-reason metric counts', async () => {
    const h = await startHarness('qburst', { env: isolated(randomUUID().slice(0, 8)) });
    const lines: Array<{ level: string; msg: string; component?: string; messages?: number; reasons?: unknown }> = [];
    const logger = createLogger(
      { level: 'info', name: 'qburst' },
      { write: (s: string) => void lines.push(JSON.parse(s) as (typeof lines)[number]) },
    );
    try {
      const before = await invalidCount('triggers', 'invalid_value');
      const listener = await createTriggerListener({ pubsub: h.worker.clients.pubsub, client: h.client, config: h.config, logger });
      const bad = Array.from({ length: 3000 }, (_, i) => profileUpdate(i, 'mid').message);
      await publishAll(await openTopic(h.worker.clients.pubsub, h.config.pubsub.topic), bad);
      const deadline = Date.now() + 120_000;
      while (listener.stats.invalid < 3000 && Date.now() < deadline) await sleep(500);
      await listener.stop();
      assert.ok(listener.stats.invalid >= 3000, `invalid ${listener.stats.invalid}`);
      const warnings = lines.filter((l) => l.level === 'warn');
      // The first message of the interval, then the counts when the listener stops.
      assert.equal(warnings.length, 2, JSON.stringify(warnings.map((w) => w.msg)));
      assert.equal(warnings[1]?.messages, listener.stats.invalid);
      assert.deepEqual(warnings[1]?.reasons, { invalid_value: listener.stats.invalid });
      assert.equal((await invalidCount('triggers', 'invalid_value')) - before, listener.stats.invalid);
    } finally {
      await h.close();
    }
  });
});

async function invalidCount(source: string, reason: string): Promise<number> {
  const text = await metricsText();
  const line = text.split('\n').find((l) => l.startsWith(`segflow_invalid_messages_total{source="${source}",reason="${reason}"}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}
