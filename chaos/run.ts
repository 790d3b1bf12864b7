/**
 * npm run test:chaos — segflow end to end under real failures, then its promises checked.
 *
 * On a stack of its own (other ports, its own directory; binaries from .stack/bin) it
 * publishes a large mixed workload, runs ingestion, the real-time path and the hourly
 * pipeline with worker processes, and meanwhile:
 *   - puts fault proxies between segflow and GCS, BigQuery (HTTP: 503s, resets before and
 *     after the upstream did the work, slow answers) and Firestore (gRPC, so TCP: resets
 *     and stalls); segflow reaches them only through its normal endpoint settings;
 *   - SIGKILLs worker processes at random points and starts replacements;
 *   - stops the Temporal dev server (SQLite file kept) in the middle of ingestion and
 *     starts it again;
 *   - stops the Pub/Sub emulator for a while and starts it again, with producers
 *     publishing into the outage.
 * Then it checks the invariants, prints a table and exits 1 naming every violated one.
 */
import { PubSub } from '@google-cloud/pubsub';
import type { Client } from '@temporalio/client';
import { Command, InvalidArgumentError } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeGcpClients, createGcpClients, type GcpClients } from '../stores/clients.js';
import { createWarehouseActivities } from '../activities/warehouse.js';
import type { Alert } from '../core/alerts.js';
import { parseConfig, type Config } from '../core/config.js';
import { decodeNdjsonGz, type LakeRecord, type QuarantineRecord } from '../core/lake.js';
import { createLogger } from '../core/logger.js';
import { createRng } from '../core/random.js';
import { ProfileSchema, type Profile } from '../core/profile.js';
import { formatInstant, MS_PER_UNIT } from '../core/time.js';
import { verifyWebhook } from '../core/webhook-signature.js';
import { rerunFailed, startDagRun, type OpsContext } from '../schedules/ops-lib.js';
import { installCurrentModel, twoSegmentModel } from '../test/support/realtime-fixtures.js';
import { createTemporalClient } from '../workers/client.js';
import { createTriggerListener, type TriggerListener } from '../workers/trigger-listener.js';
import { ingestStatsQuery, type IngestCounters } from '../workflows/ingest-messages.js';
import type { IngestEventsInput } from '../workflows/ingest-events.js';
import type { ReclassifyResult } from '../workflows/reclassify-messages.js';
import {
  checkDagRuns,
  checkProfiles,
  checkQuarantine,
  checkStaging,
  checkWebhooks,
  type DagRunRecord,
  type Violation,
  type WebhookReceipt,
} from './checks.js';
import { FaultProxy, type FaultProxyStats } from './fault-proxy.js';
import { openChaosStack, pickPorts, WorkerPool, type ChaosStack } from './stack.js';
import { buildChaosWorkload, publishResilient, type ChaosWorkload } from './workload.js';
import type { OutgoingMessage } from '../scripts/lib/publisher.js';
import { HOURLY_PIPELINE_DAG } from '../core/dag-ids.js';
import { printTable } from '../scripts/lib/table.js';

// ---------------------------------------------------------------- options

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name}: expected a whole number >= 0, found ${JSON.stringify(v)}`);
  return n;
};
const share = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1)
    throw new InvalidArgumentError(`expected a share between 0 and 1 (0.1 is 10%), found ${JSON.stringify(v)}`);
  return n;
};

/** Two kills: one lands in ingestion, one in the real-time path (each finds different bugs). */
const SHORT = { events: 3000, kills: 2, workers: 1, realtimeCustomers: 20, pubsubOutage: 6 } as const;

const program = new Command('test:chaos')
  .description(
    'Run segflow end to end on an isolated local stack while injecting real failures (faulty network to GCS, BigQuery and Firestore, ' +
      'SIGKILLed workers, a Temporal dev server restart, a Pub/Sub outage), then check that nothing was lost or duplicated.',
  )
  .option('--events <n>', 'events to publish (valid, duplicates, malformed and hostile together)', int('--events'), 100_000)
  .option('--kills <n>', 'worker processes to SIGKILL at random points', int('--kills'), 3)
  .option('--fault-rate <share>', 'share of GCS, BigQuery and Firestore requests that get a fault', share, 0.1)
  .option('--seed <n>', 'seed for the workload and the fault draws', int('--seed'), 20261126)
  .option('--workers <n>', 'worker processes kept running', int('--workers'), 2)
  .option('--realtime-customers <n>', 'customers of the real-time purchase stream', int('--realtime-customers'), 200)
  .option('--pubsub-outage <seconds>', 'how long the Pub/Sub emulator stays down', int('--pubsub-outage'), 20)
  .option(
    '--short',
    `the CI form: ${SHORT.events} events, ${SHORT.kills} kills, ${SHORT.workers} worker, ${SHORT.realtimeCustomers} real-time customers (explicit options still win)`,
  )
  .option('--port-base <n>', 'first port to try for the chaos stack (7 ports in a row)', int('--port-base'), 27300)
  .option('--stack-dir <dir>', 'directory of the chaos stack (wiped at start)')
  .option('--json <file>', 'also write the summary as JSON to this file')
  .option('--keep-stack', 'leave the chaos stack running at the end (for a look in its Temporal UI)')
  .addHelpText(
    'after',
    `
The table: faults injected by kind and disruptions; messages published; valid events expected and in the
warehouse (staging.events); quarantined malformed messages; duplicates suppressed (raw deliveries that staging
collapsed); lost (valid events missing from staging, must be 0); DAG runs and alerts; profiles checked; webhook
deliveries. Exit status 0 when every invariant holds, 1 otherwise (each violation is printed), 2 on bad options.`,
  );

interface Options {
  events: number;
  kills: number;
  faultRate: number;
  seed: number;
  workers: number;
  realtimeCustomers: number;
  pubsubOutage: number;
  short?: boolean;
  portBase: number;
  stackDir?: string;
  json?: string;
  keepStack?: boolean;
}

function resolveOptions(): Options {
  program.exitOverride();
  try {
    program.parse();
  } catch (err) {
    // --help and --version end here with code 0; a bad option with commander's message and 2.
    const code = (err as { exitCode?: number }).exitCode ?? 1;
    process.exit(code === 0 ? 0 : 2);
  }
  const o = program.opts<Options>();
  if (o.short) {
    for (const [k, v] of Object.entries(SHORT)) {
      if (program.getOptionValueSource(k) === 'default') (o as unknown as Record<string, number>)[k] = v;
    }
  }
  const bad = [
    o.events < 500 ? `--events: expected at least 500 (room for every kind of malformed message), found ${o.events}` : '',
    o.workers < 1 ? `--workers: expected at least 1, found ${o.workers}` : '',
  ].filter((m) => m !== '');
  if (bad.length > 0) {
    console.error(`test:chaos: ${bad.join('; ')}`);
    process.exit(2);
  }
  return o;
}

// ---------------------------------------------------------------- small helpers

const T0 = Date.now();
function log(line: string): void {
  console.log(`[chaos +${((Date.now() - T0) / 1000).toFixed(0).padStart(4)}s] ${line}`);
}

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs = 2000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return true;
    } catch (err) {
      log(`  (${what}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}; trying again)`);
    }
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}

/** Lake contents, read incrementally: objects are named after their content, so one read per name is enough. */
class LakeReader {
  private readonly seen = new Map<string, { raw: LakeRecord[]; quarantine: QuarantineRecord[] }>();
  constructor(
    private readonly clients: GcpClients,
    private readonly bucket: string,
  ) {}

  async read(): Promise<{ raw: LakeRecord[]; quarantine: QuarantineRecord[]; keys: Set<string>; hours: Set<string> }> {
    const [files] = await this.clients.storage.bucket(this.bucket).getFiles({ prefix: '', autoPaginate: true });
    const lakeFiles = files.filter(
      (f) => (f.name.startsWith('raw/events/v1/') || f.name.startsWith('quarantine/events/v1/')) && f.name.endsWith('.ndjson.gz'),
    );
    const fresh = lakeFiles.filter((f) => !this.seen.has(f.name));
    for (let i = 0; i < fresh.length; i += 16) {
      await Promise.all(
        fresh.slice(i, i + 16).map(async (f) => {
          const [buf] = await f.download({ decompress: false });
          const records = decodeNdjsonGz(buf);
          this.seen.set(
            f.name,
            f.name.startsWith('raw/')
              ? { raw: records as LakeRecord[], quarantine: [] }
              : { raw: [], quarantine: records as QuarantineRecord[] },
          );
        }),
      );
    }
    const raw: LakeRecord[] = [];
    const quarantine: QuarantineRecord[] = [];
    const hours = new Set<string>();
    for (const [name, v] of this.seen) {
      raw.push(...v.raw);
      quarantine.push(...v.quarantine);
      const m = /dt=(\d{4}-\d{2}-\d{2})\/hour=(\d{2})\//.exec(name);
      if (m) hours.add(`${m[1]}T${m[2]}:00:00Z`);
    }
    const keys = new Set([...raw.map((r) => `e:${r.event_id}`), ...quarantine.map(quarantineKey)]);
    return { raw, quarantine, keys, hours };
  }
}

/**
 * What identifies a published message in the lake: its event id, or for a malformed message
 * the index the workload gave it. Not the Pub/Sub message id: the emulator starts those again
 * at 1 after a restart.
 */
function messageKey(m: OutgoingMessage): string {
  const index = m.attributes.test_index;
  return index !== undefined ? `m:${index}` : `e:${(m.attributes.event_id ?? '').toLowerCase()}`;
}

function quarantineKey(q: QuarantineRecord): string {
  try {
    const attrs = JSON.parse(q.attributes) as Record<string, string>;
    return attrs.test_index !== undefined ? `m:${attrs.test_index}` : `q:${q.message_id}`;
  } catch {
    return `q:${q.message_id}`;
  }
}

interface Receiver {
  url: string;
  webhooks: WebhookReceipt[];
  alerts: Alert[];
  close(): Promise<void>;
}

const WEBHOOK_SECRET = 'whsec_chaos_0123456789abcdef0123';

async function startReceiver(): Promise<Receiver> {
  const webhooks: WebhookReceipt[] = [];
  const alerts: Alert[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      try {
        if (req.url === '/alerts') {
          alerts.push(JSON.parse(body.toString('utf8')) as Alert);
        } else if (req.url === '/hooks/crm') {
          const parsed = JSON.parse(body.toString('utf8')) as {
            delivery_id: string;
            customer_id: string;
            old_segment: WebhookReceipt['oldSegment'];
            new_segment: WebhookReceipt['newSegment'];
          };
          const header = req.headers['segflow-signature'];
          webhooks.push({
            deliveryId: parsed.delivery_id,
            customerId: parsed.customer_id,
            oldSegment: parsed.old_segment,
            newSegment: parsed.new_segment,
            body: body.toString('utf8'),
            signatureOk: verifyWebhook({ secrets: WEBHOOK_SECRET, header: typeof header === 'string' ? header : undefined, body }).ok,
          });
        } else {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      } catch (err) {
        res.writeHead(400).end(String(err));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    webhooks,
    alerts,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

// ---------------------------------------------------------------- the run

interface Summary {
  ok: boolean;
  violations: Violation[];
  options: Options;
  durationS: number;
  stagesS: Record<string, number>;
  faults: { byKind: Record<string, number>; byProxy: FaultProxyStats[] };
  disruptions: {
    workerKills: number;
    workerUnexpectedExits: number;
    temporalRestarts: number;
    pubsubOutages: number;
    publishRetries: number;
  };
  events: {
    messagesPublished: number;
    validDistinct: number;
    duplicatePublishes: number;
    malformed: number;
    hostile: number;
    realtimePurchases: number;
  };
  ingest?: IngestCounters;
  warehouse?: ReturnType<typeof checkStaging>['figures'];
  quarantine?: ReturnType<typeof checkQuarantine>['figures'];
  dags?: ReturnType<typeof checkDagRuns>['figures'] & { runList: DagRunRecord[] };
  profiles?: ReturnType<typeof checkProfiles>['figures'];
  realtimeProfiles?: ReturnType<typeof checkProfiles>['figures'] & { frequencyMismatches: number };
  webhooks?: ReturnType<typeof checkWebhooks>['figures'];
  alerts: number;
}

async function main(): Promise<number> {
  const o = resolveOptions();
  const rng = createRng(o.seed ^ 0xc4a05);
  const stages: Record<string, number> = {};
  let stageStart = Date.now();
  const lap = (name: string) => {
    stages[name] = Math.round((Date.now() - stageStart) / 100) / 10;
    stageStart = Date.now();
    log(`stage ${name} done in ${stages[name]} s`);
  };
  const violations: Violation[] = [];
  const fail = (invariant: string, message: string) => {
    violations.push({ invariant, message });
    log(`VIOLATION ${invariant}: ${message}`);
  };

  const ports = await pickPorts(o.portBase);
  const stackDir = o.stackDir ?? path.join(os.tmpdir(), `segflow-chaos-${ports.temporal}`);
  log(`starting the chaos stack in ${stackDir} (Temporal on ${ports.temporal}, UI ${ports.temporalUi})`);
  let stack: ChaosStack | undefined;
  const proxies: FaultProxy[] = [];
  let pool: WorkerPool | undefined;
  let receiver: Receiver | undefined;
  let direct: GcpClients | undefined;
  let producer: PubSub | undefined;
  let client: Client | undefined;
  let listener: TriggerListener | undefined;
  const disruptions = { workerKills: 0, workerUnexpectedExits: 0, temporalRestarts: 0, pubsubOutages: 0, publishRetries: 0 };
  const summary: Partial<Summary> = {};
  // Interrupted (Ctrl-C, a test timeout): stop what this run started, nothing else.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: stopping the workers and the chaos stack`);
      void (async () => {
        await pool?.stop().catch(() => undefined);
        if (!o.keepStack) await stack?.down().catch(() => undefined);
        process.exit(130);
      })();
    });
  }
  try {
    stack = await openChaosStack({ dir: stackDir, ports, log: (l) => log(`  ${l}`), fresh: true });
    lap('stack_up');

    // ---- fault proxies and receivers
    const slowMs = [200, 2500] as const;
    const gcs = new FaultProxy({
      name: 'gcs',
      mode: 'http',
      target: { host: '127.0.0.1', port: ports.gcs },
      faultRate: o.faultRate,
      slowMs,
      seed: o.seed + 1,
    });
    const bq = new FaultProxy({
      name: 'bigquery',
      mode: 'http',
      target: { host: '127.0.0.1', port: ports.bigquery },
      faultRate: o.faultRate,
      slowMs,
      seed: o.seed + 2,
    });
    const fs = new FaultProxy({
      name: 'firestore',
      mode: 'tcp',
      target: { host: '127.0.0.1', port: ports.firestore },
      faultRate: o.faultRate,
      slowMs: [100, 1500],
      tickMs: 1000,
      seed: o.seed + 3,
    });
    // No faults: the producers' way to Pub/Sub, closed while the emulator is down or has not got its topic back.
    const ps = new FaultProxy({
      name: 'pubsub-producers',
      mode: 'tcp',
      target: { host: '127.0.0.1', port: ports.pubsub },
      faultRate: 0,
      seed: o.seed + 4,
    });
    for (const p of [gcs, bq, fs, ps]) {
      await p.start();
      proxies.push(p);
    }
    receiver = await startReceiver();

    const names = {
      SEGFLOW_EVENTS_TOPIC: 'chaos-events',
      SEGFLOW_LAKE_SUBSCRIPTION: 'chaos-events-lake',
      SEGFLOW_TRIGGER_SUBSCRIPTION: 'chaos-events-triggers',
      SEGFLOW_LAKE_BUCKET: 'segflow-chaos-lake',
      SEGFLOW_DATASET_RAW: 'chaos_raw',
      SEGFLOW_DATASET_STAGING: 'chaos_staging',
      SEGFLOW_DATASET_MARTS: 'chaos_marts',
      SEGFLOW_FIRESTORE_PROFILES: 'chaos_profiles',
    };
    const common: Record<string, string> = {
      SEGFLOW_ENV: 'local',
      GCP_PROJECT: stack.lib.PROJECT_ID,
      TEMPORAL_ADDRESS: `127.0.0.1:${ports.temporal}`,
      TEMPORAL_UI_URL: `http://127.0.0.1:${ports.temporalUi}`,
      TEMPORAL_TASK_QUEUE: 'chaos',
      PUBSUB_EMULATOR_HOST: `127.0.0.1:${ports.pubsub}`,
      ...names,
      // Redelivery after a killed worker waits out the lease; keep it short.
      SEGFLOW_INGEST_ACK_DEADLINE_S: '10',
      // Small runs use small batches, so kills and the restart land between batches of the same wave.
      SEGFLOW_INGEST_BATCH_SIZE: o.events >= 20_000 ? '1000' : '100',
      SEGFLOW_WEBHOOKS: JSON.stringify([{ id: 'crm', url: `${receiver.url}/hooks/crm`, secret: WEBHOOK_SECRET }]),
      SEGFLOW_ALERT_WEBHOOK_URLS: `${receiver.url}/alerts`,
      SEGFLOW_RECLASSIFY_IDLE_MINUTES: '0.1',
      SEGFLOW_METRICS_PORT: '0',
      LOG_LEVEL: 'warn',
    };
    // What segflow's processes get: every emulator behind its fault proxy, through the normal settings.
    const segflowEnv = {
      ...common,
      FIRESTORE_EMULATOR_HOST: fs.hostPort,
      SEGFLOW_GCS_ENDPOINT: gcs.url,
      SEGFLOW_BIGQUERY_ENDPOINT: bq.url,
    };
    // What the runner itself uses to set up and to check: the emulators directly.
    const directEnv = {
      ...common,
      FIRESTORE_EMULATOR_HOST: `127.0.0.1:${ports.firestore}`,
      SEGFLOW_GCS_ENDPOINT: `http://127.0.0.1:${ports.gcs}`,
      SEGFLOW_BIGQUERY_ENDPOINT: `http://127.0.0.1:${ports.bigquery}`,
    };
    const directConfig: Config = parseConfig(directEnv);
    const segflowConfig: Config = parseConfig(segflowEnv);
    const logger = createLogger({ level: 'warn', name: 'chaos' });
    direct = createGcpClients(directConfig);
    producer = new PubSub({ projectId: directConfig.gcp.projectId, apiEndpoint: ps.hostPort, emulatorMode: true });
    client = await createTemporalClient(directConfig);
    const ctx: OpsContext = { client, config: directConfig };

    // ---- workload
    const w: ChaosWorkload = buildChaosWorkload({
      events: o.events,
      seed: o.seed,
      maxBytes: directConfig.ingest.maxEventBytes,
      realtimeCustomers: o.realtimeCustomers,
    });
    summary.events = {
      messagesPublished: w.bulk.length + w.realtime.length,
      validDistinct: w.validIds.size,
      duplicatePublishes: w.duplicatePublishes,
      malformed: w.malformed.length,
      hostile: w.hostile.length,
      realtimePurchases: w.realtime.length,
    };
    log(
      `workload: ${w.bulk.length} bulk messages (${w.malformed.length} malformed, ${w.hostile.length} hostile), ${w.realtime.length} real-time purchases, ${w.validIds.size} distinct valid events`,
    );

    // ---- resources (Pub/Sub topic and lake subscription first, so nothing published is lost), warehouse, model
    const ensurePubsub = async () => {
      const [topic] = await direct!.pubsub.topic(names.SEGFLOW_EVENTS_TOPIC).get({ autoCreate: true });
      const sub = direct!.pubsub.subscription(names.SEGFLOW_LAKE_SUBSCRIPTION);
      const [exists] = await sub.exists();
      if (!exists)
        await topic.createSubscription(names.SEGFLOW_LAKE_SUBSCRIPTION, { ackDeadlineSeconds: directConfig.ingest.ackDeadlineS });
    };
    await ensurePubsub();
    const [bucketExists] = await direct.storage.bucket(names.SEGFLOW_LAKE_BUCKET).exists();
    if (!bucketExists) await direct.storage.createBucket(names.SEGFLOW_LAKE_BUCKET);
    await createWarehouseActivities({ bigquery: direct.bigquery, storage: direct.storage, config: directConfig, logger }).ensureWarehouse();
    const model = twoSegmentModel('chaos-model-v1');
    await installCurrentModel(direct.storage, names.SEGFLOW_LAKE_BUCKET, model);
    lap('setup');

    // ---- kills: spread over the phases
    const killPhases = Array.from({ length: o.kills }, (_, i) => (['ingest', 'realtime', 'dag', 'ingest2'] as const)[i % 4]);
    const kill = (phase: string) => {
      const pid = pool!.killOne((n) => rng.int(0, n - 1));
      if (pid !== undefined) {
        disruptions.workerKills++;
        log(`SIGKILL worker ${pid} (${phase})`);
      }
    };
    const killsIn = (phase: string) => killPhases.filter((p) => p === phase).length;

    // ---- wave 1 and ingestion, with kills and a Temporal restart in the middle
    const producerTopic = producer.topic(names.SEGFLOW_EVENTS_TOPIC, { batching: { maxMessages: 500, maxMilliseconds: 20 } });
    const split = Math.floor(w.bulk.length * 0.6);
    const wave1 = w.bulk.slice(0, split);
    const wave2 = w.bulk.slice(split);
    log(`publishing wave 1: ${wave1.length} messages`);
    const publishDeadlineMs = 180_000 + o.events * 2;
    const p1 = await publishResilient(producerTopic, wave1, { deadlineMs: publishDeadlineMs, onProgress: (n) => log(`  published ${n}`) });
    disruptions.publishRetries += p1.retries;
    lap('publish_wave1');

    const workerEnv: NodeJS.ProcessEnv = { ...process.env, ...segflowEnv };
    for (const k of ['STORAGE_EMULATOR_HOST', 'BIGQUERY_EMULATOR_HOST', 'NODE_TEST_CONTEXT']) delete workerEnv[k];
    pool = new WorkerPool({ size: o.workers, env: workerEnv, logDir: path.join(stackDir, 'logs', 'workers'), log });
    pool.start();
    const ingestId = `ingest/${names.SEGFLOW_LAKE_SUBSCRIPTION}`;
    await client.workflow.start('ingestEvents', {
      taskQueue: 'chaos',
      workflowId: ingestId,
      args: [
        {
          subscription: names.SEGFLOW_LAKE_SUBSCRIPTION,
          maxMessages: segflowConfig.ingest.batchSize,
          maxWaitMs: 2000,
          concurrency: 2,
          stopWhenIdle: false,
        } satisfies IngestEventsInput,
      ],
    });
    const lake = new LakeReader(direct, names.SEGFLOW_LAKE_BUCKET);
    const stats = async (): Promise<IngestCounters | undefined> =>
      client!.workflow
        .getHandle(ingestId)
        .query(ingestStatsQuery)
        .catch(() => undefined);
    const killAt = Array.from({ length: killsIn('ingest') }, () => 0.15 + rng.next() * 0.6).sort();
    const restartAt = 0.35 + rng.next() * 0.3;
    let restarted = false;
    const wave1Ids = new Set(wave1.map(messageKey));
    const inLake = (ids: Set<string>, have: Set<string>) => [...ids].every((id) => have.has(id));
    const ingestTimeout = 120_000 + o.events * 12;
    let lastLakeRead = 0;
    const wave1Done = await waitFor(
      'wave 1 in the lake',
      async () => {
        const s = await stats();
        const progress = s ? s.pulled / wave1.length : 0;
        while (killAt.length > 0 && progress >= killAt[0]!) {
          killAt.shift();
          kill('ingest');
        }
        if (!restarted && progress >= restartAt) {
          restarted = true;
          log(`stopping the Temporal dev server at ${(progress * 100).toFixed(0)}% of wave 1 (SQLite file kept)`);
          await stack!.stop('temporal');
          await sleep(3000);
          await stack!.up();
          disruptions.temporalRestarts++;
          log('Temporal dev server is back');
        }
        // The counters miss batches that a killed worker wrote and acked but never reported, so
        // they can stay below 100% for good: below it, look at the lake itself every few seconds.
        if (progress < 1 && Date.now() - lastLakeRead < 3_000) return false;
        lastLakeRead = Date.now();
        const l = await lake.read();
        return inLake(wave1Ids, l.keys);
      },
      ingestTimeout,
      500,
    );
    // Everything scheduled for this phase happens even if ingestion was quick.
    while (killAt.shift() !== undefined) kill('ingest');
    if (!restarted) {
      log('stopping the Temporal dev server (SQLite file kept)');
      await stack.stop('temporal');
      await sleep(3000);
      await stack.up();
      disruptions.temporalRestarts++;
    }
    if (!wave1Done) fail('stages_completed', `wave 1 did not reach the lake within ${ingestTimeout / 1000} s`);
    lap('ingest_wave1');

    // ---- Pub/Sub outage: only now, because the emulator keeps nothing across a restart
    log(`Pub/Sub outage: stopping the emulator for ${o.pubsubOutage} s while wave 2 (${wave2.length} messages) is being published`);
    ps.block();
    await stack.stop('pubsub');
    disruptions.pubsubOutages++;
    const wave2Publish = publishResilient(producerTopic, wave2, { deadlineMs: publishDeadlineMs + o.pubsubOutage * 1000 });
    await sleep(o.pubsubOutage * 1000);
    await stack.up();
    // The emulator is in-memory: topic and subscriptions are gone. Real Pub/Sub keeps them, so
    // they come back before any producer can reach it again.
    await waitFor('Pub/Sub resources recreated', async () => (await ensurePubsub(), true), 60_000, 1000);
    // The emulator also numbers messages from 1 again, while real Pub/Sub never reuses a message
    // id, and the lake names a batch's object after its message ids: without this, a batch of
    // wave 2 could get the name (and replace the object) of a wave 1 batch. Throwaway messages on
    // a topic without subscriptions move the emulator's one counter past every id used so far.
    const usedIds = wave1.length + p1.retries + 1000;
    const scratch = direct.pubsub.topic('chaos-id-counter', { batching: { maxMessages: 1000, maxMilliseconds: 10 } });
    await scratch.get({ autoCreate: true });
    await Promise.all(Array.from({ length: usedIds }, () => scratch.publishMessage({ data: Buffer.from('-') })));
    log(`moved the emulator's message ids past the ${usedIds} used before the restart`);
    ps.unblock();
    log('Pub/Sub emulator is back with its topic and lake subscription; producers retry');
    const p2 = await wave2Publish;
    disruptions.publishRetries += p2.retries;
    log(`wave 2 published (${p2.retries} publish retries, slowest message ${(p2.maxRetryMs / 1000).toFixed(1)} s)`);
    const wave2Ids = new Set(wave2.map(messageKey));
    let ingest2Kills = killsIn('ingest2');
    const wave2Done = await waitFor(
      'wave 2 in the lake',
      async () => {
        if (ingest2Kills > 0 && rng.chance(0.3)) {
          ingest2Kills--;
          kill('ingest2');
        }
        return inLake(wave2Ids, (await lake.read()).keys);
      },
      ingestTimeout,
    );
    while (ingest2Kills-- > 0) kill('ingest2');
    if (!wave2Done) fail('stages_completed', `wave 2 did not reach the lake within ${ingestTimeout / 1000} s`);
    lap('pubsub_outage_and_wave2');

    // ---- real-time path: purchases -> trigger listener -> reclassifyCustomer -> Firestore -> webhooks
    listener = await createTriggerListener({ pubsub: direct.pubsub, client, config: segflowConfig, logger }, { ensureSubscription: true });
    log(`real-time: publishing ${w.realtime.length} purchases for ${w.realtimeCustomers.length} customers`);
    const rtKills = Array.from({ length: killsIn('realtime') }, () => rng.int(1_000, 8_000));
    const rtKillTimers = rtKills.map((ms) => setTimeout(() => kill('realtime'), ms));
    const p3 = await publishResilient(producerTopic, w.realtime, { deadlineMs: publishDeadlineMs });
    disruptions.publishRetries += p3.retries;
    await sleep(Math.max(0, ...rtKills) + 500);
    rtKillTimers.forEach(clearTimeout);
    const rtIds = new Set(w.realtime.map(messageKey));
    const realtimeDone = await waitFor(
      'the real-time path to settle',
      async () => {
        const st = listener!.stats;
        if (st.signalled + st.ignored + st.invalid < w.realtime.length) return false;
        let running = 0;
        for await (const _ of client!.workflow.list({ query: `WorkflowType = 'reclassifyCustomer' AND ExecutionStatus = 'Running'` }))
          running++;
        if (running > 0) return false;
        return inLake(rtIds, (await lake.read()).keys);
      },
      300_000,
      3000,
    );
    if (!realtimeDone)
      fail('stages_completed', 'the real-time path did not settle within 300 s (listener behind or reclassify workflows still running)');
    await listener.stop();
    listener = undefined;
    lap('realtime');

    // Snapshot of the real-time customers before batch profile syncs touch them.
    let changes = 0;
    let given = 0;
    for await (const wf of client.workflow.list({ query: `WorkflowType = 'reclassifyCustomer' AND ExecutionStatus = 'Completed'` })) {
      const r = (await client.workflow.getHandle(wf.workflowId, wf.runId).result()) as ReclassifyResult;
      changes += r.totals.segmentChanges;
      given += r.totals.webhooksFailed;
    }
    const rtProfiles = await readProfiles(direct, names.SEGFLOW_FIRESTORE_PROFILES, w.realtimeCustomers);
    const rtCheck = checkProfiles(model, rtProfiles, 'profiles_match_batch');
    const purchasesOf = new Map<string, Set<string>>();
    for (const m of w.realtime) {
      const e = JSON.parse(m.data.toString('utf8')) as { customer_id: string; event_id: string };
      purchasesOf.set(e.customer_id, (purchasesOf.get(e.customer_id) ?? new Set()).add(e.event_id));
    }
    const frequencyMismatches = rtProfiles.filter((p) => p.rfm.frequency !== (purchasesOf.get(p.customer_id)?.size ?? 0));
    if (rtProfiles.length !== w.realtimeCustomers.length)
      fail('profiles_match_batch', `${w.realtimeCustomers.length - rtProfiles.length} real-time customers have no profile`);
    summary.realtimeProfiles = { ...rtCheck.figures, frequencyMismatches: frequencyMismatches.length };
    if (frequencyMismatches.length > 0) {
      fail(
        'realtime_exactly_once',
        `${frequencyMismatches.length} real-time profiles count a different number of purchases than were published (an event applied twice or not at all), e.g. ` +
          frequencyMismatches
            .slice(0, 5)
            .map((p) => `${p.customer_id} frequency ${p.rfm.frequency} vs ${purchasesOf.get(p.customer_id)?.size}`)
            .join(', '),
      );
    }
    for (const v of rtCheck.violations) fail(v.invariant, `real-time snapshot: ${v.message}`);
    const webhooks = checkWebhooks(
      receiver.webhooks,
      { segmentChanges: changes, webhooksFailed: given },
      new Map(rtProfiles.map((p) => [p.customer_id, p.segment_id])),
    );
    summary.webhooks = webhooks.figures;
    for (const v of webhooks.violations) fail(v.invariant, v.message);

    // ---- stop ingestion; hourly pipeline for every covered arrival hour
    summary.ingest = await stats();
    await client.workflow.getHandle(ingestId).terminate('chaos run: every message is in the lake');
    const lakeNow = await lake.read();
    const intervals = [...lakeNow.hours].sort();
    log(`hourly_pipeline for ${intervals.length} arrival hour(s): ${intervals.join(', ')}`);
    const runs: DagRunRecord[] = [];
    const dagKills = killsIn('dag');
    for (const [i, start] of intervals.entries()) {
      const end = formatInstant(Date.parse(start) + MS_PER_UNIT.h);
      const started = await startDagRun(ctx, HOURLY_PIPELINE_DAG, { start, end });
      const timers = i === 0 ? Array.from({ length: dagKills }, () => setTimeout(() => kill('dag'), rng.int(3_000, 20_000))) : [];
      const status = await client.workflow
        .getHandle(started.workflowId, started.runId)
        .result()
        .then(
          () => 'COMPLETED',
          () => 'FAILED',
        );
      timers.forEach(clearTimeout);
      runs.push({ ...started, intervalStart: start, status });
      log(`  ${started.workflowId}: ${status}`);
    }
    lap('dag_runs_under_faults');
    // An operator reruns failed intervals once the weather clears.
    for (const p of proxies) p.setFaultRate(0);
    for (const start of intervals) {
      const last = runs.filter((r) => r.intervalStart === start).at(-1);
      if (last?.status !== 'FAILED') continue;
      await sleep(2000);
      const rerun = await rerunFailed(ctx, HOURLY_PIPELINE_DAG, start);
      const status = await client.workflow
        .getHandle(rerun.workflowId, rerun.runId)
        .result()
        .then(
          () => 'COMPLETED',
          () => 'FAILED',
        );
      runs.push({ workflowId: rerun.workflowId, runId: rerun.runId, intervalStart: start, status, rerunOf: last.runId });
      log(`  rerun ${rerun.workflowId}: ${status}`);
    }
    lap('dag_reruns');

    // ---- checks
    await sleep(2000); // alerts are delivered by an activity after the run's last task
    const dagCheck = checkDagRuns(intervals, runs, receiver.alerts);
    summary.dags = { ...dagCheck.figures, runList: runs };
    for (const v of dagCheck.violations) fail(v.invariant, v.message);

    const lakeFinal = await lake.read();
    const q = checkQuarantine(w, lakeFinal);
    summary.quarantine = q.figures;
    for (const v of q.violations) fail(v.invariant, v.message);

    const bqq = async <T>(query: string, params?: Record<string, unknown>): Promise<T[]> => {
      const [rows] = await direct!.bigquery.query({ query, location: directConfig.gcp.location, ...(params ? { params } : {}) });
      return rows as T[];
    };
    const project = directConfig.gcp.projectId;
    const rawRows = Number(
      (await bqq<{ n: number }>(`SELECT COUNT(*) AS n FROM \`${project}.${names.SEGFLOW_DATASET_RAW}.events\``))[0]?.n ?? 0,
    );
    // One row per leading character with the ids joined, from one scan: paging 100,000 rows out
    // of the emulator takes minutes.
    const staged: Array<{ event_id: string }> = [];
    try {
      const groups = await bqq<{ n: number; ids: string | null }>(
        `SELECT SUBSTR(event_id, 1, 1) AS lead, COUNT(*) AS n, STRING_AGG(event_id, ',') AS ids FROM \`${project}.${names.SEGFLOW_DATASET_STAGING}.events\` GROUP BY lead`,
      );
      for (const g of groups) {
        const ids = g.ids ? g.ids.split(',') : [];
        if (ids.length !== Number(g.n)) throw new Error(`STRING_AGG returned ${ids.length} ids for ${g.n} rows`);
        for (const id of ids) staged.push({ event_id: id });
      }
    } catch (err) {
      fail('staging_exact', `staging.events could not be read: ${err instanceof Error ? err.message : String(err)}`);
    }
    const hostileRows = await bqq<{ event_id: string; properties: string }>(
      `SELECT event_id, properties FROM \`${project}.${names.SEGFLOW_DATASET_STAGING}.events\` WHERE event_id IN UNNEST(@ids)`,
      { ids: w.hostile.map((h) => h.eventId) },
    ).catch(() => []);
    const s = checkStaging(w, {
      rawRows,
      stagedRows: staged.length,
      stagedIds: staged.map((r) => r.event_id),
      hostileProperties: new Map(hostileRows.map((r) => [r.event_id, r.properties])),
    });
    summary.warehouse = s.figures;
    for (const v of s.violations) fail(v.invariant, v.message);

    const allProfiles = await readProfiles(direct, names.SEGFLOW_FIRESTORE_PROFILES);
    const pc = checkProfiles(model, allProfiles);
    summary.profiles = pc.figures;
    for (const v of pc.violations) fail(v.invariant, v.message);
    lap('checks');
  } catch (err) {
    fail('run_completed', `the run stopped early: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  } finally {
    disruptions.workerUnexpectedExits = pool?.stats.unexpectedExits ?? 0;
    await listener?.stop().catch(() => undefined);
    await pool?.stop();
    await client?.connection.close().catch(() => undefined);
    await producer?.close().catch(() => undefined);
    if (direct) await closeGcpClients(direct).catch(() => undefined);
    await receiver?.close();
    for (const p of proxies) await p.close();
    if (stack && !o.keepStack) await stack.down().catch((err: unknown) => log(`could not stop the chaos stack: ${String(err)}`));
    else if (stack)
      log(
        `chaos stack left running in ${stack.dir} (Temporal UI http://127.0.0.1:${stack.ports.temporalUi}); stop it with SEGFLOW_STACK_DIR=${stack.dir} STACK_*_PORT=... npm run stack:down`,
      );
  }

  const byProxy = proxies.map((p) => p.snapshot());
  const byKind: Record<string, number> = {};
  for (const p of byProxy) for (const [k, v] of Object.entries(p.faults)) byKind[`${p.name}.${k}`] = v;
  const full: Summary = {
    ok: violations.length === 0,
    violations,
    options: o,
    durationS: Math.round((Date.now() - T0) / 1000),
    stagesS: stages,
    faults: { byKind, byProxy },
    disruptions,
    events: summary.events ?? {
      messagesPublished: 0,
      validDistinct: 0,
      duplicatePublishes: 0,
      malformed: 0,
      hostile: 0,
      realtimePurchases: 0,
    },
    alerts: receiver?.alerts.length ?? 0,
    ...summary,
  };
  printSummary(full);
  if (o.json) {
    mkdirSync(path.dirname(path.resolve(o.json)), { recursive: true });
    writeFileSync(o.json, `${JSON.stringify(full, null, 2)}\n`);
  }
  return full.ok ? 0 : 1;
}

async function readProfiles(clients: GcpClients, collection: string, only?: readonly string[]): Promise<Profile[]> {
  const col = clients.firestore.collection(collection);
  const snaps = only ? await clients.firestore.getAll(...only.map((id) => col.doc(id))) : (await col.get()).docs;
  const out: Profile[] = [];
  for (const s of snaps) {
    if (!s.exists) continue;
    const parsed = ProfileSchema.safeParse(s.data());
    if (parsed.success) out.push(parsed.data);
    else throw new Error(`profile ${collection}/${s.id} does not match the profile schema: ${parsed.error.message.slice(0, 300)}`);
  }
  return out;
}

function printSummary(s: Summary): void {
  const rows: Array<[string, string | number]> = [];
  const add = (k: string, v: string | number | undefined) => rows.push([k, v ?? '-']);
  for (const p of s.faults.byProxy) {
    for (const [k, v] of Object.entries(p.faults)) add(`fault ${p.name} ${k}`, v);
    if (p.blocked > 0) add(`${p.name} connections refused during the outage`, p.blocked);
  }
  add('worker processes SIGKILLed', s.disruptions.workerKills);
  add('Temporal dev server restarts', s.disruptions.temporalRestarts);
  add('Pub/Sub emulator outages', s.disruptions.pubsubOutages);
  add('publish attempts retried', s.disruptions.publishRetries);
  add('messages published', s.events.messagesPublished);
  add('events in (distinct valid)', s.events.validDistinct);
  add('  of which hostile strings', s.events.hostile);
  add('events in the warehouse (staging.events)', s.warehouse?.stagedDistinct);
  add('malformed published', s.events.malformed);
  add('quarantined (distinct malformed)', s.quarantine?.distinctMalformed);
  add('duplicate publishes', s.events.duplicatePublishes);
  add('duplicates suppressed (raw rows - staged rows)', s.warehouse?.duplicatesSuppressed);
  add('LOST (must be 0)', s.warehouse?.lost);
  add('duplicated in staging (must be 0)', s.warehouse?.duplicatedInStaging);
  add('DAG runs (succeeded / failed)', s.dags ? `${s.dags.succeeded} / ${s.dags.failed}` : undefined);
  add('alerts (DAG failures / all)', s.dags ? `${s.dags.alerts} / ${s.alerts}` : s.alerts);
  add('profiles checked against a fresh assignment', s.profiles?.checked);
  add('real-time profiles with a purchase counted twice or never (must be 0)', s.realtimeProfiles?.frequencyMismatches);
  add('webhook deliveries (distinct / received)', s.webhooks ? `${s.webhooks.distinctDeliveries} / ${s.webhooks.received}` : undefined);
  add('webhook segment changes recorded', s.webhooks?.changesRecorded);
  add('run time (s)', s.durationS);
  console.log('\nchaos run summary');
  printTable([], rows, { indent: 2 });
  console.log(
    `  stages (s): ${Object.entries(s.stagesS)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  if (s.ok) console.log('\nevery invariant holds');
  else {
    console.log(`\n${s.violations.length} violation(s):`);
    for (const v of s.violations) console.log(`  - ${v.invariant}: ${v.message.split('\n')[0]}`);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`test:chaos: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
