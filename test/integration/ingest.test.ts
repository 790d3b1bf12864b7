import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createIngestActivities } from '../../activities/ingest.js';
import { createWarehouseActivities } from '../../activities/warehouse.js';
import { decodeNdjsonGz, hourStartOf } from '../../core/lake.js';
import { gunzipSync } from 'node:zlib';
import { PROJECT_ROOT } from '../../core/config.js';
import { ingestStatsQuery, type IngestCounters } from '../../workflows/ingest-messages.js';
import type { IngestEventsInput } from '../../workflows/ingest-events.js';
import { openTopic, publishAll } from '../../scripts/lib/publisher.js';
import { buildWorkload, readLake, type Workload } from '../support/ingest-fixtures.js';
import { startHarness, testConfig, type IntegrationHarness } from '../support/stack.js';

function isolatedEnv(name: string): Record<string, string> {
  const id = randomUUID().slice(0, 8);
  const ds = `${name.replace(/[^a-z0-9]/g, '_')}_${id}`;
  return {
    SEGFLOW_DATASET_RAW: `raw_${ds}`,
    SEGFLOW_DATASET_STAGING: `staging_${ds}`,
    SEGFLOW_DATASET_MARTS: `marts_${ds}`,
    SEGFLOW_EVENTS_TOPIC: `t-${name}-${id}`,
    SEGFLOW_LAKE_SUBSCRIPTION: `t-${name}-${id}-lake`,
    SEGFLOW_TRIGGER_SUBSCRIPTION: `t-${name}-${id}-triggers`,
    SEGFLOW_LAKE_BUCKET: `segflow-test-${name}-${id}`,
    SEGFLOW_INGEST_ACK_DEADLINE_S: '10',
  };
}

async function publishWorkload(
  h: { config: IntegrationHarness['config']; pubsub: IntegrationHarness['worker']['clients']['pubsub'] },
  w: Workload,
) {
  const topic = await openTopic(h.pubsub, h.config.pubsub.topic);
  await publishAll(topic, w.messages);
}

function ingestInput(h: IntegrationHarness, stopWhenIdle = true): IngestEventsInput {
  return {
    subscription: h.config.pubsub.lakeSubscription,
    maxMessages: h.config.ingest.batchSize,
    maxWaitMs: h.config.ingest.maxWaitMs,
    concurrency: h.config.ingest.concurrency,
    stopWhenIdle,
  };
}

function assertLakeMatches(w: Workload, lake: Awaited<ReturnType<typeof readLake>>) {
  const rawIds = new Set(lake.raw.map((r) => r.event_id));
  assert.equal(rawIds.size, w.validIds.size, 'distinct valid events in the lake');
  for (const id of w.validIds) assert.ok(rawIds.has(id), `event ${id} reached the lake`);
  // Every duplicate publish is in the lake too (staging removes them by event_id).
  assert.ok(lake.raw.length >= w.validIds.size + w.duplicates, `raw records ${lake.raw.length} >= ${w.validIds.size + w.duplicates}`);

  const byIndex = new Map<string, (typeof lake.quarantine)[number]>();
  for (const q of lake.quarantine) byIndex.set((JSON.parse(q.attributes) as Record<string, string>).test_index ?? '', q);
  assert.equal(byIndex.size, w.malformed.length, 'every malformed message is quarantined once per index');
  for (const m of w.malformed) {
    const q = byIndex.get(String(m.index));
    assert.ok(q, `malformed #${m.index} (${m.kind}) is in the quarantine`);
    assert.ok(
      q.reasons.some((r) => r.code === m.kind),
      `malformed #${m.index} carries reason ${m.kind}: ${JSON.stringify(q.reasons)}`,
    );
    assert.ok(q.data_base64.length > 0 || m.kind === 'not_json');
  }
}

describe('ingestion: Pub/Sub to the GCS lake', () => {
  let h: IntegrationHarness;
  before(async () => {
    h = await startHarness('ingest', { env: isolatedEnv('ingest') });
    await createIngestActivities({
      pubsub: h.worker.clients.pubsub,
      storage: h.worker.clients.storage,
      config: h.config,
      logger: h.logger,
    }).ensureIngestResources();
  });
  after(async () => {
    await h?.close();
  });

  test('20,000 events over 90 days with 3% malformed and 2% duplicates: every valid event in the lake, every malformed one quarantined with its reason', async () => {
    const w = buildWorkload({
      events: 20_000,
      malformedShare: 0.03,
      duplicateShare: 0.02,
      days: 90,
      seed: 7,
      maxBytes: h.config.ingest.maxEventBytes,
    });
    assert.equal(w.malformed.length, 600);
    await publishWorkload({ config: h.config, pubsub: h.worker.clients.pubsub }, w);
    const handle = await h.client.workflow.start('ingestEvents', {
      taskQueue: h.config.temporal.taskQueue,
      workflowId: `ingest/${h.config.pubsub.lakeSubscription}`,
      args: [ingestInput(h)],
    });
    const counters = (await handle.result()) as IngestCounters;
    assert.equal(counters.pulled, 20_000 + 400 + 600);
    assert.equal(counters.quarantined, 600);
    assert.equal(counters.written, 20_400);
    const lake = await readLake(h.worker.clients.storage, h.config.lake.bucket);
    assertLakeMatches(w, lake);

    // The pipeline's first two steps for every arrival hour: load the lake hour into
    // raw.events, then build staging.events (one row per event_id).
    const warehouse = createWarehouseActivities({
      bigquery: h.worker.clients.bigquery,
      storage: h.worker.clients.storage,
      config: h.config,
      logger: h.logger,
    });
    await warehouse.ensureWarehouse();
    const hours = [...new Set(lake.raw.map((r) => hourStartOf(new Date(r.publish_time)).getTime()))].sort();
    for (const start of hours) {
      const interval = { start: new Date(start).toISOString(), end: new Date(start + 3_600_000).toISOString() };
      await warehouse.loadRawEvents({ interval });
      await warehouse.runSqlModel({ model: 'stg_events', interval });
    }
    const staging = `\`${h.config.gcp.projectId}.${h.config.warehouse.staging}.events\``;
    const [counts] = await h.worker.clients.bigquery.query({
      query: `SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS d FROM ${staging}`,
    });
    assert.deepEqual(
      counts.map((r: { n: number; d: number }) => [Number(r.n), Number(r.d)]),
      [[20_000, 20_000]],
      'staging holds exactly the distinct valid events',
    );
    const [ids] = await h.worker.clients.bigquery.query({ query: `SELECT event_id FROM ${staging}` });
    const stagedIds = new Set((ids as Array<{ event_id: string }>).map((r) => r.event_id));
    for (const id of w.validIds) assert.ok(stagedIds.has(id), `event ${id} is in staging.events`);
    // Late events (event time up to 90 days before arrival) count like any other.
    const [late] = await h.worker.clients.bigquery.query({
      query: `SELECT COUNT(*) AS n FROM ${staging} WHERE ts < TIMESTAMP_SUB(received_at, INTERVAL 30 DAY)`,
    });
    assert.ok(Number((late as Array<{ n: number }>)[0]!.n) > 0, 'late events are staged');
  });
});

describe('ingestion survives a crash between the object write and the ack', () => {
  let h: IntegrationHarness;
  let crashes = 0;
  before(async () => {
    h = await startHarness('ingest-crash', {
      env: isolatedEnv('crash'),
      worker: {
        hooks: {
          ingest: {
            afterWriteBeforeAck: () => {
              if (crashes < 2) {
                crashes++;
                throw new Error('injected crash between write and ack');
              }
            },
          },
        },
      },
    });
    await createIngestActivities({
      pubsub: h.worker.clients.pubsub,
      storage: h.worker.clients.storage,
      config: h.config,
      logger: h.logger,
    }).ensureIngestResources();
  });
  after(async () => {
    await h?.close();
  });

  test('messages of the failed batches are redelivered and land exactly once per event id', async () => {
    const w = buildWorkload({
      events: 3000,
      malformedShare: 0.03,
      duplicateShare: 0.02,
      days: 30,
      seed: 11,
      maxBytes: h.config.ingest.maxEventBytes,
    });
    await publishWorkload({ config: h.config, pubsub: h.worker.clients.pubsub }, w);
    const handle = await h.client.workflow.start('ingestEvents', {
      taskQueue: h.config.temporal.taskQueue,
      workflowId: `ingest/${h.config.pubsub.lakeSubscription}`,
      // Small batches so the crashed ones are a part of the stream, not all of it.
      args: [{ ...ingestInput(h), maxMessages: 500, concurrency: 1, stopWhenIdle: false }],
    });
    // Redelivery waits for the ack deadline (10 s here), so poll the counters rather than stop on the first idle round.
    const expected = w.messages.length;
    const deadline = Date.now() + 120_000;
    let stats = await handle.query(ingestStatsQuery);
    while (Date.now() < deadline) {
      stats = await handle.query(ingestStatsQuery);
      if (stats.pulled >= expected) break;
      await sleep(500);
    }
    await handle.terminate('test done');
    assert.equal(crashes, 2, 'the hook crashed two batches');
    assert.equal(stats.pulled, expected, 'acked batches cover every published message exactly once');
    assertLakeMatches(w, await readLake(h.worker.clients.storage, h.config.lake.bucket));
  });
});

describe('ingestion survives SIGKILL of the worker process', () => {
  const env = {
    ...isolatedEnv('kill'),
    TEMPORAL_TASK_QUEUE: `test-kill-${randomUUID().slice(0, 8)}`,
    SEGFLOW_METRICS_PORT: '0',
    LOG_LEVEL: 'warn',
  };
  const config = testConfig('kill', env);
  const children: ChildProcess[] = [];
  const startWorkerProcess = () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...env },
      stdio: 'ignore',
    });
    children.push(child);
    return child;
  };
  after(() => {
    for (const c of children) c.kill('SIGKILL');
  });

  test('a worker killed mid-run is replaced and the lake still holds every event once per id', async () => {
    const h = await startHarness('kill-client', { env: { ...env, TEMPORAL_TASK_QUEUE: `unused-${randomUUID().slice(0, 8)}` } });
    try {
      await createIngestActivities({
        pubsub: h.worker.clients.pubsub,
        storage: h.worker.clients.storage,
        config,
        logger: h.logger,
      }).ensureIngestResources();
      const w = buildWorkload({
        events: 6000,
        malformedShare: 0.03,
        duplicateShare: 0.02,
        days: 30,
        seed: 13,
        maxBytes: config.ingest.maxEventBytes,
      });
      await publishWorkload({ config, pubsub: h.worker.clients.pubsub }, w);
      const first = startWorkerProcess();
      const handle = await h.client.workflow.start('ingestEvents', {
        taskQueue: config.temporal.taskQueue,
        workflowId: `ingest/${config.pubsub.lakeSubscription}`,
        args: [
          {
            subscription: config.pubsub.lakeSubscription,
            maxMessages: 200,
            maxWaitMs: 2000,
            concurrency: 1,
            stopWhenIdle: false,
          } satisfies IngestEventsInput,
        ],
      });
      // Kill once some batches are in, so the kill lands mid-stream.
      const killBy = Date.now() + 60_000;
      while ((await handle.query(ingestStatsQuery).catch(() => ({ pulled: 0 }))).pulled < 1000 && Date.now() < killBy) await sleep(100);
      first.kill('SIGKILL');
      await sleep(500);
      startWorkerProcess();
      // Done when the lake holds every event: the counters can run ahead of it, because a
      // batch the killed worker finished may have had its acks still queued, so those
      // messages come back and are counted twice while others wait out their lease.
      const deadline = Date.now() + 180_000;
      const complete = async () => {
        const lake = await readLake(h.worker.clients.storage, config.lake.bucket);
        const ids = new Set(lake.raw.map((r) => r.event_id));
        return [...w.validIds].every((id) => ids.has(id)) && new Set(lake.quarantine.map((q) => q.message_id)).size >= w.malformed.length;
      };
      while (!(await complete()) && Date.now() < deadline) await sleep(2000);
      // The lake can be complete before the replacement worker polls; a query needs a worker.
      let stats = await handle.query(ingestStatsQuery).catch(() => undefined);
      while (stats === undefined && Date.now() < deadline) {
        await sleep(1000);
        stats = await handle.query(ingestStatsQuery).catch(() => undefined);
      }
      assert.ok(stats !== undefined, 'the replacement worker answers the stats query');
      await handle.terminate('test done');
      assert.ok(stats.pulled >= w.messages.length, `pulled ${stats.pulled} of ${w.messages.length}`);
      assertLakeMatches(w, await readLake(h.worker.clients.storage, config.lake.bucket));
    } finally {
      await h.close();
    }
  });
});

describe('ingestion splits batches bigger than the lake object limit', () => {
  const OBJECT_MAX = 4096;
  let h: IntegrationHarness;
  before(async () => {
    h = await startHarness('ingest-split', {
      env: {
        ...isolatedEnv('split'),
        SEGFLOW_LAKE_OBJECT_MAX_BYTES: String(OBJECT_MAX),
        SEGFLOW_INGEST_BATCH_MAX_BYTES: '16384',
        SEGFLOW_EVENT_MAX_BYTES: '1024',
      },
    });
    await createIngestActivities({
      pubsub: h.worker.clients.pubsub,
      storage: h.worker.clients.storage,
      config: h.config,
      logger: h.logger,
    }).ensureIngestResources();
  });
  after(async () => {
    await h?.close();
  });

  test('every event lands once in objects under the limit; a message over the size limit is quarantined alone', async () => {
    const w = buildWorkload({
      events: 2000,
      malformedShare: 0.03,
      duplicateShare: 0.02,
      days: 30,
      seed: 17,
      maxBytes: h.config.ingest.maxEventBytes,
    });
    // One message far bigger than both limits: its quarantine record cannot fit an object.
    const huge = {
      data: Buffer.from(JSON.stringify({ event_id: randomUUID(), padding: 'x'.repeat(20_000) })),
      attributes: { test_huge: '1' },
    };
    await publishWorkload({ config: h.config, pubsub: h.worker.clients.pubsub }, { ...w, messages: [...w.messages, huge] });
    const counters = (await h.client.workflow.execute('ingestEvents', {
      taskQueue: h.config.temporal.taskQueue,
      workflowId: `ingest/${h.config.pubsub.lakeSubscription}`,
      args: [ingestInput(h)],
    })) as IngestCounters;
    assert.equal(counters.pulled, w.messages.length + 1);

    const [files] = await h.worker.clients.storage.bucket(h.config.lake.bucket).getFiles();
    const oversized: Array<{ attributes?: string; size_bytes?: number }> = [];
    for (const f of files) {
      const [gz] = await f.download({ decompress: false });
      const bytes = gunzipSync(gz).length;
      const records = decodeNdjsonGz(gz) as Array<{ attributes?: string; size_bytes?: number; reasons?: Array<{ code: string }> }>;
      if (bytes <= OBJECT_MAX) {
        assert.ok(gz.length <= OBJECT_MAX, `${f.name}: ${gz.length} gzip bytes`);
        continue;
      }
      // Only a single record larger than the limit may make an object exceed it, and only a
      // message over the message-size limit makes such a record: it is quarantined as too_large.
      assert.equal(records.length, 1, `${f.name}: ${bytes} bytes over ${OBJECT_MAX} with ${records.length} records`);
      assert.ok(f.name.startsWith('quarantine/'), f.name);
      assert.ok(
        records[0]!.reasons?.some((r) => r.code === 'too_large'),
        JSON.stringify(records[0]!.reasons),
      );
      oversized.push(records[0]!);
    }
    assert.ok(
      oversized.some((r) => JSON.parse(r.attributes ?? '{}').test_huge === '1'),
      'the huge message, alone in its object',
    );
    // Batches of up to 1000 messages (about 500 bytes a line) could not fit 4 KiB: they were split.
    assert.ok(counters.objects > counters.batches * 2, `${counters.objects} objects for ${counters.batches} batches`);
    assert.equal(files.length, counters.objects, 'no object written twice under two names, none overwritten');

    const lake = await readLake(h.worker.clients.storage, h.config.lake.bucket);
    lake.quarantine = lake.quarantine.filter((q) => JSON.parse(q.attributes).test_huge !== '1');
    assertLakeMatches(w, lake);
  });
});

describe('ingestion alerts on its quarantine rate and lag, once per episode', () => {
  interface Received {
    path: string;
    body: {
      kind: string;
      severity: string;
      summary: string;
      message: string;
      dedupKey: string;
      workflow?: { workflowId: string };
      links: Array<{ label: string; url: string }>;
    };
  }
  const received: Received[] = [];
  let receiver: Server;
  let receiverUrl: string;
  let deadUrl: string;
  const listen = (server: Server) =>
    new Promise<string>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
    );

  before(async () => {
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Received['body'] });
        res.writeHead(200).end('ok');
      });
    });
    receiverUrl = await listen(receiver);
    // A second channel that refuses connections: alerting through it fails, ingestion must not.
    const closed = createServer();
    deadUrl = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
  });
  after(async () => {
    await new Promise((resolve) => receiver.close(resolve));
  });

  async function alertingHarness(name: string, thresholds: Record<string, string>) {
    const h = await startHarness(name, {
      env: { ...isolatedEnv(name), SEGFLOW_ALERT_WEBHOOK_URLS: `${receiverUrl}/${name},${deadUrl}/${name}`, ...thresholds },
    });
    await createIngestActivities({
      pubsub: h.worker.clients.pubsub,
      storage: h.worker.clients.storage,
      config: h.config,
      logger: h.logger,
    }).ensureIngestResources();
    return h;
  }

  async function drain(h: IntegrationHarness, workflowId: string): Promise<IngestCounters> {
    return (await h.client.workflow.execute('ingestEvents', {
      taskQueue: h.config.temporal.taskQueue,
      workflowId,
      // One batch of 100 per activity: the burst spans many results, each over the threshold.
      args: [{ ...ingestInput(h), maxMessages: 100, runForMs: 0 }],
    })) as IngestCounters;
  }

  test('a normal stream raises none; a burst of malformed messages raises exactly one, and a dead channel does not fail ingestion', async () => {
    const h = await alertingHarness('qalert', {
      SEGFLOW_INGEST_ALERT_QUARANTINE_SHARE: '0.2',
      SEGFLOW_INGEST_ALERT_MIN_MESSAGES: '50',
      SEGFLOW_INGEST_ALERT_LAG_S: '3600',
    });
    try {
      const normal = buildWorkload({
        events: 1500,
        malformedShare: 0.01,
        duplicateShare: 0,
        days: 7,
        seed: 23,
        maxBytes: h.config.ingest.maxEventBytes,
      });
      await publishWorkload({ config: h.config, pubsub: h.worker.clients.pubsub }, normal);
      const quiet = await drain(h, `ingest/${h.config.pubsub.lakeSubscription}/normal`);
      assert.equal(quiet.pulled, normal.messages.length);
      assert.equal(quiet.quarantined, 15);
      assert.equal(quiet.alerts?.raised, 0);

      const burst = buildWorkload({
        events: 600,
        malformedShare: 0.5,
        duplicateShare: 0,
        days: 7,
        seed: 29,
        maxBytes: h.config.ingest.maxEventBytes,
      });
      await publishWorkload({ config: h.config, pubsub: h.worker.clients.pubsub }, burst);
      const workflowId = `ingest/${h.config.pubsub.lakeSubscription}/burst`;
      const noisy = await drain(h, workflowId);
      assert.equal(noisy.pulled, burst.messages.length, 'every message ingested although one alert channel is down');
      assert.equal(noisy.quarantined, 300);
      assert.ok(noisy.batches >= 5, `the burst spans ${noisy.batches} batches`);
      assert.equal(noisy.alerts?.raised, 1);
      // The dead channel's retries end within seconds; nothing more arrives after that.
      await sleep(2_000);
      const mine = received.filter((r) => r.path === '/qalert');
      assert.equal(mine.length, 1, `alerts received: ${JSON.stringify(mine.map((r) => r.body.summary))}`);
      const alert = mine[0]!.body;
      assert.equal(alert.kind, 'data_anomaly');
      assert.equal(alert.severity, 'warning');
      assert.match(alert.dedupKey, new RegExp(`^data_anomaly/${h.config.pubsub.lakeSubscription}/quarantine_rate/`));
      assert.match(alert.summary, /quarantined \d+\.\d% of \d+ messages/);
      assert.match(alert.message, /reasons: /);
      assert.equal(alert.workflow?.workflowId, workflowId);
      assert.ok(
        alert.links.some((l) => l.label === 'Temporal UI' && l.url.includes(encodeURIComponent(workflowId))),
        JSON.stringify(alert.links),
      );
    } finally {
      await h.close();
    }
  });

  test('messages older than the lag threshold when written raise exactly one lag alert', async () => {
    const h = await alertingHarness('lagalert', { SEGFLOW_INGEST_ALERT_LAG_S: '2' });
    try {
      const w = buildWorkload({
        events: 500,
        malformedShare: 0,
        duplicateShare: 0,
        days: 7,
        seed: 31,
        maxBytes: h.config.ingest.maxEventBytes,
      });
      await publishWorkload({ config: h.config, pubsub: h.worker.clients.pubsub }, w);
      await sleep(4_000);
      const counters = await drain(h, `ingest/${h.config.pubsub.lakeSubscription}`);
      assert.equal(counters.pulled, w.messages.length);
      assert.equal(counters.alerts?.raised, 1);
      await sleep(2_000);
      const mine = received.filter((r) => r.path === '/lagalert');
      assert.equal(mine.length, 1);
      assert.equal(mine[0]!.body.kind, 'ingestion_lag');
      assert.equal(mine[0]!.body.severity, 'error');
      assert.match(mine[0]!.body.summary, /is \d+ s behind \(threshold 2 s\)/);
    } finally {
      await h.close();
    }
  });
});
