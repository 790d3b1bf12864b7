import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createIngestActivities } from '../../activities/ingest.js';
import { createWarehouseActivities } from '../../activities/warehouse.js';
import { createStorage } from '../../stores/clients.js';
import { openTopic, publishAll, type OutgoingMessage } from '../../scripts/lib/publisher.js';
import { followReplay, quarantineSummary, startReplay, type QuarantineContext } from '../../schedules/quarantine-lib.js';
import type { IngestCounters } from '../../workflows/ingest-messages.js';
import { readLake } from '../support/ingest-fixtures.js';
import { startHarness, type IntegrationHarness } from '../support/stack.js';

const id = randomUUID().slice(0, 8);
const env = {
  SEGFLOW_DATASET_RAW: `raw_q_${id}`,
  SEGFLOW_DATASET_STAGING: `staging_q_${id}`,
  SEGFLOW_DATASET_MARTS: `marts_q_${id}`,
  SEGFLOW_EVENTS_TOPIC: `t-q-${id}`,
  SEGFLOW_LAKE_SUBSCRIPTION: `t-q-${id}-lake`,
  SEGFLOW_TRIGGER_SUBSCRIPTION: `t-q-${id}-triggers`,
  SEGFLOW_LAKE_BUCKET: `segflow-test-q-${id}`,
  SEGFLOW_SCHEDULE_PREFIX: `q-${id}-`,
  SEGFLOW_INGEST_ACK_DEADLINE_S: '10',
};
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

describe('quarantine: inspect, extend the contract, replay', () => {
  let h: IntegrationHarness;
  const mid = Array.from({ length: 40 }, (_, i) => profileUpdate(i, 'mid'));
  const huge = Array.from({ length: 7 }, (_, i) => profileUpdate(100 + i, 'huge'));
  const from = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000).toISOString();
  const to = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 + 2 * 3_600_000).toISOString();
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
