/**
 * npm run bench:ingest — segflow's ingestion rate against the emulator's raw
 * streaming-pull rate, measured side by side in the same run.
 *
 * Both sides get the same N messages from the same publisher process, published
 * once the consumer is running and has opened its stream (both get the same
 * warm-up); each rate is N / (time from the go to publish to the last message
 * consumed). The baseline consumer only acks: it is done at the ack of its N-th
 * distinct message. segflow's consumer (the ingestEvents workflow on a worker in
 * this process) validates, writes gzip NDJSON objects to the GCS emulator and
 * acks after the write: it is done when the batch that completes N messages is
 * acked (the `lastBatchAt` of its counters). Loss is checked by reading the lake back.
 */
import { Duration } from '@google-cloud/pubsub';
import { Command } from 'commander';
import { randomUUID } from 'node:crypto';
import { closeGcpClients, createGcpClients } from '../stores/clients.js';
import { createIngestActivities, leasedBytesLimit, leasedMessagesLimit } from '../activities/ingest.js';
import { loadConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { generateEvents, makePopulation } from '../demo/personas.js';
import { wholeNumber } from '../scripts/lib/cli.js';
import { openTopic } from '../scripts/lib/publisher.js';
import { printTable } from '../scripts/lib/table.js';
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ingestStatsQuery } from '../workflows/ingest-messages.js';
import type { IngestEventsInput } from '../workflows/ingest-events.js';
import { createTemporalClient } from '../workers/client.js';
import { startWorker } from '../workers/worker.js';
import { readLake } from '../test/support/ingest-fixtures.js';

const program = new Command('bench:ingest')
  .description('Compare segflow ingestion (Pub/Sub -> GCS lake) with a bare streaming-pull subscriber on the same emulator.')
  .option('--events <n>', 'messages per side', wholeNumber(1000), 50_000)
  .option('--concurrency <n>', 'segflow batch activities in flight (default: SEGFLOW_INGEST_CONCURRENCY)', wholeNumber(1))
  .option('--warmup-ms <n>', 'wait after each consumer has started before publishing', wholeNumber(1), 1500)
  .showHelpAfterError();
program.parse();
const opts = program.opts<{ events: number; concurrency?: number; warmupMs: number }>();

const id = randomUUID().slice(0, 8);
const config = loadConfig({
  ...process.env,
  SEGFLOW_EVENTS_TOPIC: `bench-ingest-${id}`,
  SEGFLOW_LAKE_SUBSCRIPTION: `bench-ingest-${id}-lake`,
  SEGFLOW_TRIGGER_SUBSCRIPTION: `bench-ingest-${id}-triggers`,
  SEGFLOW_LAKE_BUCKET: `segflow-bench-${id}`,
  TEMPORAL_TASK_QUEUE: `bench-ingest-${id}`,
  ...(opts.concurrency === undefined ? {} : { SEGFLOW_INGEST_CONCURRENCY: String(opts.concurrency) }),
  SEGFLOW_METRICS_PORT: '0',
  LOG_LEVEL: 'error',
});
const logger = createLogger({ level: 'error', name: 'bench-ingest' });
const clients = createGcpClients(config);

const n = opts.events;
const SEED = 99;
console.log(
  `bench:ingest with ${n} messages per side, published by a separate process; segflow: ${config.ingest.concurrency} activities, ` +
    `batches of ${config.ingest.batchSize}, ${config.ingest.writesInFlight} writes in flight per activity`,
);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Start the publisher process; resolves with a function that starts publishing and returns when it is done. */
async function publisher(topic: string): Promise<() => Promise<void>> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('./publish-child.ts', import.meta.url)), topic, String(n), String(SEED)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout! });
  const it = lines[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.value !== 'ready') throw new Error(`publisher did not start: ${String(first.value)}`);
  return async () => {
    child.stdin!.write('go\n');
    const exit = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (exit !== 0) throw new Error(`publisher exited with ${exit}`);
  };
}

// ---- baseline: a bare streaming-pull subscriber that only acks
async function baseline(): Promise<number> {
  const topic = await openTopic(clients.pubsub, `bench-raw-${id}`);
  await topic.createSubscription(`bench-raw-${id}-sub`, { ackDeadlineSeconds: config.ingest.ackDeadlineS });
  // The same flow control as segflow's subscriber, so only what is done with a message differs.
  const sub = clients.pubsub.subscription(`bench-raw-${id}-sub`, {
    flowControl: { maxMessages: leasedMessagesLimit(config.ingest), maxBytes: leasedBytesLimit(config.ingest), allowExcessMessages: false },
    minAckDeadline: Duration.from({ seconds: config.ingest.ackDeadlineS }),
  });
  const seen = new Set<string>();
  const publish = await publisher(topic.name.split('/').pop()!);
  const done = new Promise<number>((resolve) => {
    sub.on('message', (m) => {
      m.ack();
      seen.add(m.id);
      if (seen.size === n) resolve(Date.now());
    });
  });
  sub.on('error', (err) => console.error('baseline subscriber error', err));
  await sleep(opts.warmupMs);
  const t0 = Date.now();
  await publish();
  const end = await done;
  await sub.close();
  await sub.delete();
  return (end - t0) / 1000;
}

// ---- segflow: the ingestEvents workflow on a real worker
async function segflow(): Promise<{ secs: number; lost: number; duplicates: number; objects: number }> {
  await createIngestActivities({ pubsub: clients.pubsub, storage: clients.storage, config, logger }).ensureIngestResources();
  const worker = await startWorker(config, logger, { clients });
  const client = await createTemporalClient(config);
  const publish = await publisher(config.pubsub.topic);
  const input: IngestEventsInput = {
    subscription: config.pubsub.lakeSubscription,
    maxMessages: config.ingest.batchSize,
    maxWaitMs: config.ingest.maxWaitMs,
    concurrency: config.ingest.concurrency,
  };
  const handle = await client.workflow.start('ingestEvents', {
    taskQueue: config.temporal.taskQueue,
    workflowId: `ingest/${config.pubsub.lakeSubscription}`,
    args: [input],
  });
  // Running means its batch activities are pulling (so the stream is open), as in steady state.
  for (;;) {
    const { raw } = await handle.describe();
    if ((raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'ingestBatch' && a.lastStartedTime)) break;
    await sleep(50);
  }
  await sleep(opts.warmupMs);
  const t0 = Date.now();
  const publishing = publish();
  const expected = new Set<string>();
  const now = new Date();
  for (const e of generateEvents(makePopulation(Math.ceil(n / 20), SEED), {
    from: new Date(now.getTime() - 30 * 86_400_000),
    to: now,
    seed: SEED,
  })) {
    expected.add(e.event_id.toLowerCase());
    if (expected.size === n) break;
  }
  const missingFrom = (ids: ReadonlySet<string>) => {
    let missing = 0;
    for (const e of expected) if (!ids.has(e)) missing++;
    return missing;
  };
  // `pulled` counts redelivered copies too, so reaching n only says it is time to look at
  // the lake: the run ends when every published event is there (the counters carry when the
  // last batch was acked, so polling slowly does not move the end). A stream that stalls
  // ends the run after `stallMs` without a new batch, and what is missing counts as lost.
  const stallMs = 30_000;
  let end: number;
  let lake: Awaited<ReturnType<typeof readLake>>;
  let ids: Set<string>;
  for (;;) {
    const stats = await handle.query(ingestStatsQuery);
    const lastBatchAt = Date.parse(stats.lastBatchAt ?? '');
    if (stats.pulled >= n) {
      lake = await readLake(clients.storage, config.lake.bucket);
      ids = new Set(lake.raw.map((r) => r.event_id));
      const missing = missingFrom(ids);
      if (missing === 0 || Date.now() - lastBatchAt > stallMs) {
        end = lastBatchAt;
        break;
      }
      console.log(`  ${stats.pulled} pulled (with redelivered copies); ${missing} events not in the lake yet`);
      await sleep(1_000);
      continue;
    }
    await sleep(250);
  }
  await publishing;
  await handle.terminate('benchmark done');
  const lost = missingFrom(ids);
  await worker.shutdown();
  await client.connection.close();
  return { secs: (end - t0) / 1000, lost, duplicates: lake.raw.length - ids.size, objects: lake.rawObjects };
}

// The machine may be shared: the load next to the figures says how far to trust them.
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const loadBefore = load();
const rawSecs = await baseline();
const seg = await segflow();
const rawRate = n / rawSecs;
const segRate = n / seg.secs;
console.log('');
printTable(
  ['side', 'seconds', 'events/s'],
  [
    ['emulator streaming pull (ack only)', rawSecs.toFixed(2), rawRate.toFixed(0)],
    ['segflow publish -> lake objects', seg.secs.toFixed(2), segRate.toFixed(0)],
  ],
  { align: ['left', 'right', 'right'] },
);
console.log(
  `ratio segflow / raw: ${(segRate / rawRate).toFixed(2)} (target >= 0.80); lost: ${seg.lost} (target 0); ` +
    `redelivered copies in the lake: ${seg.duplicates}; lake objects: ${seg.objects}`,
);
console.log(`load average (1, 5, 15 min): ${loadBefore} before, ${load()} after`);
await closeGcpClients(clients);
process.exit(seg.lost === 0 ? 0 : 1);
