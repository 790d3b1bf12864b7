/**
 * Forgetting a customer on the real local stack (docs/privacy.md): a customer with events in the
 * lake (raw and quarantine), the warehouse (raw, staging, marts, features, segments), a Firestore
 * profile and a running reclassification workflow is forgotten through `ops forget`'s functions.
 * Afterwards the verification and direct reads of every store find nothing of theirs, every other
 * customer's rows and records are unchanged, the audit record holds no raw id, a late event and a
 * replay leave no trace, and a request whose worker is killed mid-way completes the same.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowNotFoundError } from '@temporalio/client';
import { createIngestActivities } from '../../activities/ingest.js';
import { createWarehouseActivities, type WarehouseActivities } from '../../activities/warehouse.js';
import { PROJECT_ROOT, type Config } from '../../core/config.js';
import { topologicalOrder } from '../../core/dag-graph.js';
import type { DataInterval } from '../../core/dag-task.js';
import { encodeEvent } from '../../core/events.js';
import { encodeNdjsonGz, quarantineObjectName, toQuarantineRecord, type LakeRecord } from '../../core/lake.js';
import { privacyCollections } from '../../core/privacy.js';
import { SIGNATURE_HEADER, verifyWebhook } from '../../core/webhook-signature.js';
import type { TriggerSignal } from '../../core/realtime-features.js';
import { sqlModelTasks } from '../../elt/dag-tasks.js';
import { loadSqlProject } from '../../elt/load-project.js';
import { modelTable } from '../../elt/project.js';
import { followForget, forgetStatus, requestForget } from '../../schedules/ops-forget.js';
import { CUSTOMER_SEGMENTS_SCHEMA } from '../../stores/model-registry.js';
import { createSuppressionList, dropSuppressed } from '../../stores/suppression.js';
import { createTriggerListener } from '../../workers/trigger-listener.js';
import {
  RECLASSIFY_WORKFLOW,
  reclassifyWorkflowId,
  triggerEventSignal,
  type ReclassifyInput,
} from '../../workflows/reclassify-messages.js';
import type { IngestEventsInput } from '../../workflows/ingest-events.js';
import { readLake } from '../support/ingest-fixtures.js';
import { purchaseEvent } from '../support/realtime-fixtures.js';
import { startHarness, testConfig, type IntegrationHarness } from '../support/stack.js';
import { H1, H2, writeLakeFixtures } from '../support/warehouse-fixtures.js';

const RECEIVER_PORT = Number(process.env.SEGFLOW_TEST_WEBHOOK_PORT ?? 26020);
const SECRET = 'forget-test-secret-0123456789';
const id = randomUUID().replace(/-/g, '').slice(0, 8);
const env: Record<string, string> = {
  SEGFLOW_DATASET_RAW: `raw_f${id}`,
  SEGFLOW_DATASET_STAGING: `staging_f${id}`,
  SEGFLOW_DATASET_MARTS: `marts_f${id}`,
  SEGFLOW_LAKE_BUCKET: `segflow-forget-${id}`,
  SEGFLOW_EVENTS_TOPIC: `t-forget-${id}`,
  SEGFLOW_LAKE_SUBSCRIPTION: `t-forget-${id}-lake`,
  SEGFLOW_TRIGGER_SUBSCRIPTION: `t-forget-${id}-triggers`,
  SEGFLOW_FIRESTORE_PROFILES: `profiles_f${id}`,
  SEGFLOW_SCHEDULE_PREFIX: `f${id}-`,
  SEGFLOW_FORGET_SETTLE_S: '2',
  SEGFLOW_RECLASSIFY_IDLE_MINUTES: '60',
  SEGFLOW_WEBHOOKS: JSON.stringify([{ id: 'crm', url: `http://127.0.0.1:${RECEIVER_PORT}/hook`, secret: SECRET }]),
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'error',
};

let h: IntegrationHarness;
let wh: WarehouseActivities;
let receiver: Server;
const received: Array<{ body: string; signature: string }> = [];

type Counts = Record<string, Record<string, number>>;

function tables(config: Config): Array<{ dataset: string; table: string }> {
  const out = [{ dataset: config.warehouse.raw, table: 'events' }];
  for (const m of loadSqlProject().models) {
    const t = modelTable(m);
    out.push({ dataset: config.warehouse[t.dataset], table: t.table });
  }
  out.push({ dataset: config.warehouse.marts, table: 'customer_segments' });
  return out;
}

/** Rows per customer in every table, and lake records per customer: what "unchanged" is compared on. */
async function snapshot(config: Config): Promise<Counts> {
  const out: Counts = {};
  for (const { dataset, table } of tables(config)) {
    const [rows] = await h.worker.clients.bigquery.query({
      query: `SELECT customer_id, COUNT(*) AS n FROM \`${config.gcp.projectId}.${dataset}.${table}\` GROUP BY customer_id`,
      location: config.gcp.location,
    });
    out[`${dataset}.${table}`] = Object.fromEntries(
      (rows as Array<{ customer_id: string; n: number }>).map((r) => [r.customer_id, Number(r.n)]),
    );
  }
  const lake = await readLake(h.worker.clients.storage, config.lake.bucket);
  const raw: Record<string, number> = {};
  for (const r of lake.raw) raw[r.customer_id] = (raw[r.customer_id] ?? 0) + 1;
  out.lake_raw = raw;
  const q: Record<string, number> = {};
  for (const r of lake.quarantine) {
    const cid = (JSON.parse(Buffer.from(r.data_base64, 'base64').toString('utf8')) as { customer_id?: string }).customer_id ?? '?';
    q[cid] = (q[cid] ?? 0) + 1;
  }
  out.lake_quarantine = q;
  return out;
}

function without(counts: Counts, ids: readonly string[]): Counts {
  return Object.fromEntries(
    Object.entries(counts).map(([k, v]) => [k, Object.fromEntries(Object.entries(v).filter(([c]) => !ids.includes(c)))]),
  );
}

function holds(counts: Counts, customerId: string): string[] {
  return Object.entries(counts)
    .filter(([, v]) => (v[customerId] ?? 0) > 0)
    .map(([k]) => k);
}

async function runInterval(interval: DataInterval) {
  await wh.loadRawEvents({ interval });
  for (const name of topologicalOrder(sqlModelTasks(loadSqlProject().models))) await wh.runSqlModel({ model: name, interval });
}

/** A quarantined message that names the customer in its body (a purchase without an amount). */
async function writeQuarantined(config: Config, customerId: string, messageId: string): Promise<void> {
  const data = Buffer.from(JSON.stringify({ event_id: randomUUID(), customer_id: customerId, type: 'purchase', ts: H1.start }));
  const publishTime = new Date(Date.parse(H1.start) + 60_000);
  const record = toQuarantineRecord(
    { messageId, data, attributes: { type: 'purchase' }, publishTime },
    [{ code: 'missing_field', message: 'amount missing' }],
    publishTime,
  );
  await h.worker.clients.storage
    .bucket(config.lake.bucket)
    .file(quarantineObjectName(publishTime, [messageId]))
    .save(encodeNdjsonGz([record]), {
      resumable: false,
      contentType: 'application/x-ndjson',
      metadata: { contentEncoding: 'gzip' },
      gzip: false,
    });
}

async function startReclassify(config: Config, customerId: string): Promise<void> {
  const event = purchaseEvent(customerId, 25);
  const args: [ReclassifyInput] = [{ customerId, idleMinutes: 60 }];
  await h.client.workflow.signalWithStart(RECLASSIFY_WORKFLOW, {
    workflowId: reclassifyWorkflowId(customerId, config.schedules.prefix),
    taskQueue: config.temporal.taskQueue,
    args,
    signal: triggerEventSignal,
    signalArgs: [{ event: event as TriggerSignal['event'], publishTime: new Date().toISOString() }],
  });
}

async function workflowExists(config: Config, customerId: string): Promise<boolean> {
  try {
    await h.client.workflow.getHandle(reclassifyWorkflowId(customerId, config.schedules.prefix)).describe();
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

async function profileExists(config: Config, customerId: string): Promise<boolean> {
  return (await h.worker.clients.firestore.collection(config.firestore.profiles).doc(customerId).get()).exists;
}

describe('forget a customer everywhere', () => {
  before(async () => {
    receiver = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        received.push({ body, signature: String(req.headers[SIGNATURE_HEADER.toLowerCase()] ?? '') });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(RECEIVER_PORT, '127.0.0.1', r));
    h = await startHarness('forget', { env });
    const { config } = h;
    await createIngestActivities({
      pubsub: h.worker.clients.pubsub,
      storage: h.worker.clients.storage,
      config,
      logger: h.logger,
    }).ensureIngestResources();
    wh = createWarehouseActivities({ bigquery: h.worker.clients.bigquery, storage: h.worker.clients.storage, config, logger: h.logger });
    await wh.ensureWarehouse();
    await writeLakeFixtures(h.worker.clients.storage, config.lake.bucket);
    for (const c of ['alice', 'bob', 'carol']) await writeQuarantined(config, c, `q-${c}`);
    await runInterval(H1);
    await runInterval(H2);
    const marts = h.worker.clients.bigquery.dataset(config.warehouse.marts);
    await marts.createTable('customer_segments', { schema: CUSTOMER_SEGMENTS_SCHEMA.map((f) => ({ ...f })) });
    await h.worker.clients.bigquery.query({
      query:
        `INSERT INTO \`${config.gcp.projectId}.${config.warehouse.marts}.customer_segments\` (customer_id, model_version, segment_id, segment_label, distance, margin, assigned_at) ` +
        `SELECT customer_id, 'v1', 0, 'Occasional', 1.0, 0.5, CURRENT_TIMESTAMP() FROM \`${config.gcp.projectId}.${config.warehouse.marts}.customer_features\``,
      location: config.gcp.location,
    });
    for (const c of ['alice', 'bob', 'carol', 'dave'])
      await h.worker.clients.firestore.collection(config.firestore.profiles).doc(c).set({ customer_id: c, segment_id: 0 });
    await startReclassify(config, 'alice');
    await startReclassify(config, 'carol');
  });

  after(async () => {
    await h?.close();
    receiver?.close();
  });

  test('afterwards no store holds a record of theirs, the others are unchanged, the audit has no raw id', async () => {
    const { config } = h;
    const before = await snapshot(config);
    const stores = [
      `${config.warehouse.raw}.events`,
      `${config.warehouse.staging}.events`,
      `${config.warehouse.marts}.customer_features`,
      `${config.warehouse.marts}.customer_segments`,
      'lake_raw',
      'lake_quarantine',
    ];
    const holding = holds(before, 'alice');
    for (const store of stores) assert.ok(holding.includes(store), `alice is in ${store} before (found in ${holding.join(', ')})`);
    assert.ok(await profileExists(config, 'alice'));
    assert.ok(await workflowExists(config, 'alice'));

    const ctx = { client: h.client, config };
    // A dry run counts and removes nothing.
    const dry = await requestForget(ctx, ['alice'], { note: 'TICKET-1 dry', requestedBy: 'test', dryRun: true });
    const dryDone = await followForget(ctx, dry.requestId, () => undefined, 300);
    assert.equal(dryDone.workflowStatus, 'COMPLETED');
    assert.ok(dryDone.progress!.stores.warehouse.found > 0 && dryDone.progress!.stores.warehouse.removed === 0);
    assert.deepEqual(await snapshot(config), before, 'a dry run changes nothing');

    const started = await requestForget(ctx, ['alice'], { note: 'TICKET-1', requestedBy: 'test', dryRun: false });
    assert.equal(started.outcome, 'started');
    const done = await followForget(ctx, started.requestId, () => undefined, 300);
    assert.equal(done.workflowStatus, 'COMPLETED');
    const p = done.progress!;
    assert.equal(p.verified, true, `verification: ${JSON.stringify(p.verification)}`);
    assert.ok(p.stores.lake_raw.removed > 0 && p.stores.lake_quarantine.removed === 1 && p.stores.warehouse.removed > 0);
    assert.equal(p.stores.firestore.removed, 1);
    assert.equal(p.stores.temporal.removed, 1);
    assert.equal(p.stores.webhooks.removed, 1);

    // Direct reads of each store.
    const afterCounts = await snapshot(config);
    assert.deepEqual(holds(afterCounts, 'alice'), [], 'no table or lake area holds alice');
    assert.deepEqual(afterCounts, without(before, ['alice']), 'every other customer is unchanged');
    assert.equal(await profileExists(config, 'alice'), false);
    assert.equal(await profileExists(config, 'bob'), true);
    assert.equal(await workflowExists(config, 'alice'), false);
    assert.equal(await workflowExists(config, 'carol'), true);

    // The audit record, and no raw id in it or left in the request.
    const status = await forgetStatus(ctx, started.requestId);
    assert.ok(status.audit);
    assert.equal(status.audit.customers, 1);
    assert.equal(status.audit.customer_hashes.length, 1);
    assert.ok(!JSON.stringify(status.audit).includes('alice'), 'the audit record holds no raw id');
    const names = privacyCollections(config.firestore.profiles);
    assert.equal(
      (await h.worker.clients.firestore.collection(names.requests).doc(started.requestId).get()).exists,
      false,
      'request ids erased',
    );
    const suppressionDocs = await h.worker.clients.firestore.collection(names.suppression).get();
    assert.ok(!JSON.stringify(suppressionDocs.docs.map((d) => [d.id, d.data()])).includes('alice'), 'the suppression list holds no raw id');
    // The workflow's history holds no raw id either.
    const history = await h.client.workflow.getHandle(started.workflowId).fetchHistory();
    const text = JSON.stringify(history, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : v));
    assert.ok(text.includes(started.requestId), 'the history is readable as text');
    assert.ok(!text.includes('alice'), 'the forget workflow history holds no raw id');

    // The signed customer.forgotten delivery.
    const hook = received.find((r) => r.body.includes('customer.forgotten'));
    assert.ok(hook, 'a customer.forgotten delivery arrived');
    assert.deepEqual((JSON.parse(hook.body) as { customer_ids: string[] }).customer_ids, ['alice']);
    assert.equal(verifyWebhook({ secrets: SECRET, header: hook.signature, body: hook.body }).ok, true, 'signed with the subscriber secret');

    // Idempotent: asking again changes nothing and says so.
    const again = await requestForget(ctx, ['alice'], { note: 'TICKET-1 again', requestedBy: 'test', dryRun: false });
    assert.equal(again.outcome, 'already-done');
    assert.deepEqual(await snapshot(config), afterCounts);
  });

  test('a late event, a trigger and a replayed hour for them leave no trace', async () => {
    const { config } = h;
    const beforeLate = await snapshot(config);
    const topic = h.worker.clients.pubsub.topic(config.pubsub.topic);
    for (const customer of ['alice', 'bob']) {
      const { data, attributes } = encodeEvent(purchaseEvent(customer, 10));
      await topic.publishMessage({ data, attributes: { ...attributes } });
    }
    const input: IngestEventsInput = {
      subscription: config.pubsub.lakeSubscription,
      maxMessages: config.ingest.batchSize,
      maxWaitMs: 1000,
      concurrency: 1,
      stopWhenIdle: true,
    };
    await h.client.workflow.execute('ingestEvents', {
      taskQueue: config.temporal.taskQueue,
      workflowId: `${config.schedules.prefix}ingest/${id}`,
      args: [input],
    });
    const lake = await readLake(h.worker.clients.storage, config.lake.bucket);
    assert.equal(lake.raw.filter((r) => r.customer_id === 'alice').length, 0, 'the late event never reached the lake');
    assert.equal(lake.raw.filter((r) => r.customer_id === 'bob').length, (beforeLate.lake_raw!.bob ?? 0) + 1, "bob's event did");

    // The trigger listener drops their key events (counted) and starts no workflow.
    const listener = await createTriggerListener({
      pubsub: h.worker.clients.pubsub,
      client: h.client,
      config,
      logger: h.logger,
      suppression: createSuppressionList({ firestore: h.worker.clients.firestore, config, logger: h.logger }),
    });
    const deadline = Date.now() + 20_000;
    while (listener.stats.suppressed < 1 && Date.now() < deadline) await sleep(200);
    await listener.stop();
    assert.ok(listener.stats.suppressed >= 1, `suppressed ${listener.stats.suppressed}`);
    assert.equal(await workflowExists(config, 'alice'), false, 'no reclassification restarted');

    // A replay or backfill of lake records drops them through the exported filter.
    const suppression = createSuppressionList({ firestore: h.worker.clients.firestore, config, logger: h.logger });
    const replay: LakeRecord[] = [{ ...lake.raw[0]!, customer_id: 'alice' }, lake.raw[0]!];
    const filtered = await dropSuppressed(suppression, replay, (r) => r.customer_id);
    suppression.close();
    assert.equal(filtered.dropped, 1);
    assert.equal(filtered.kept.length, 1);

    // Reloading an hour and rebuilding the models brings nobody back.
    await runInterval(H2);
    assert.deepEqual(holds(await snapshot(config), 'alice'), []);
  });

  test('killing the worker during a request and letting it resume completes it with the same result', async () => {
    const queue = `test-forget-kill-${randomUUID().slice(0, 8)}`;
    const config = testConfig('forget-kill', { ...env, TEMPORAL_TASK_QUEUE: queue, SEGFLOW_FORGET_SETTLE_S: '3' });
    const children: ChildProcess[] = [];
    const startWorkerProcess = () => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
        cwd: PROJECT_ROOT,
        env: { ...process.env, ...env, TEMPORAL_TASK_QUEUE: queue, SEGFLOW_FORGET_SETTLE_S: '3', SEGFLOW_METRICS_PORT: '0' },
        stdio: 'ignore',
      });
      children.push(child);
      return child;
    };
    try {
      const before = await snapshot(config);
      assert.ok(holds(before, 'carol').length > 0);
      const ctx = { client: h.client, config };
      const first = startWorkerProcess();
      const started = await requestForget(ctx, ['carol'], { note: 'TICKET-2', requestedBy: 'test', dryRun: false });
      // Kill once it is removing (an activity in flight), then let a new worker resume it.
      const handle = h.client.workflow.getHandle(started.workflowId);
      const killBy = Date.now() + 60_000;
      while (Date.now() < killBy) {
        const stage = await handle
          .query('forgetProgress')
          .then((p) => (p as { stage: string }).stage)
          .catch(() => 'planning');
        if (stage === 'removing' || stage === 'verifying' || stage === 'done') break;
        await sleep(100);
      }
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
      startWorkerProcess();
      const done = await followForget(ctx, started.requestId, () => undefined, 300);
      assert.equal(done.workflowStatus, 'COMPLETED');
      assert.equal(done.progress!.verified, true, JSON.stringify(done.progress!.verification));
      const afterCounts = await snapshot(config);
      assert.deepEqual(holds(afterCounts, 'carol'), []);
      assert.deepEqual(afterCounts, without(before, ['carol']), 'every other customer is unchanged');
      assert.equal(await profileExists(config, 'carol'), false);
      assert.equal(await workflowExists(config, 'carol'), false);
    } finally {
      for (const c of children) c.kill('SIGKILL');
    }
  });
});
