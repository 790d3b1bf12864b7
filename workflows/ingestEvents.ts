import { condition, continueAsNew, log, patched, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { IngestActivities, IngestBatchInput, IngestBatchResult } from '../activities/ingest.js';
import { ingestStatsQuery, pauseIngestSignal, resumeIngestSignal, type IngestCounters } from './ingest-messages.js';

export interface IngestEventsInput {
  subscription: string;
  maxMessages: number;
  maxWaitMs: number;
  /** ingestBatch activities in flight at once. */
  concurrency: number;
  /** How long one activity keeps taking batches while messages flow; default: the worker's config. */
  runForMs?: number;
  /** Batches one activity writes at once while pulling the next; default: the worker's config. */
  writesInFlight?: number;
  /** Stop when a whole round pulls nothing (one-shot drains for tests and backfills). */
  stopWhenIdle?: boolean;
  /** Carried across continue-as-new. */
  counters?: IngestCounters;
}

const { ensureIngestResources } = proxyActivities<IngestActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

const { ingestBatch } = proxyActivities<IngestActivities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '20 seconds',
  // A failed batch is retried for ever with backoff: its messages stay in Pub/Sub
  // until a batch writes them, so retrying loses nothing and alerts come from lag.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/** Batches per run before continuing as new; also renewed earlier when the server suggests it. */
const BATCHES_PER_RUN = 2000;

/**
 * Continuous ingestion of one lake subscription: batches of messages go to the
 * GCS lake (valid events) or the quarantine (invalid ones), acked after the write.
 * `concurrency` batch activities are always in flight, each taking batches for as
 * long as messages flow (`runForMs`); each finished activity is replaced at once.
 */
export async function ingestEvents(input: IngestEventsInput): Promise<IngestCounters> {
  const counters: IngestCounters = input.counters ?? {
    pulled: 0,
    written: 0,
    quarantined: 0,
    batches: 0,
    objects: 0,
    paused: false,
    generation: 0,
  };
  setHandler(ingestStatsQuery, () => counters);
  setHandler(pauseIngestSignal, (reason) => {
    counters.paused = true;
    log.info('ingestion paused', { reason: reason ?? 'no reason given' });
  });
  setHandler(resumeIngestSignal, () => {
    counters.paused = false;
    log.info('ingestion resumed');
  });

  // The topic, subscriptions and bucket exist before the first pull (creating them is idempotent).
  // patched(): runs started before this step existed replay without it.
  if (counters.generation === 0 && counters.batches === 0 && patched('ensure-ingest-resources')) await ensureIngestResources();
  const batch: IngestBatchInput = {
    subscription: input.subscription,
    maxMessages: input.maxMessages,
    maxWaitMs: input.maxWaitMs,
    ...(input.runForMs === undefined ? {} : { runForMs: input.runForMs }),
    ...(input.writesInFlight === undefined ? {} : { writesInFlight: input.writesInFlight }),
  };
  const inFlight = new Map<number, Promise<[number, IngestBatchResult]>>();
  let launched = 0;
  let emptyInARow = 0;
  let finishing: 'idle' | 'renew' | undefined;
  for (;;) {
    while (!finishing && !counters.paused && inFlight.size < input.concurrency) {
      const id = launched++;
      inFlight.set(id, ingestBatch(batch).then((r): [number, IngestBatchResult] => [id, r]));
    }
    if (inFlight.size === 0) {
      if (finishing) break;
      await condition(() => !counters.paused);
      continue;
    }
    const [id, result] = await Promise.race(inFlight.values());
    inFlight.delete(id);
    add(counters, result);
    emptyInARow = result.pulled === 0 ? emptyInARow + 1 : 0;
    if (!finishing && input.stopWhenIdle && emptyInARow >= input.concurrency) finishing = 'idle';
    if (!finishing && (launched >= BATCHES_PER_RUN || workflowInfo().continueAsNewSuggested)) finishing = 'renew';
  }
  if (finishing === 'idle') return counters;
  await continueAsNew<typeof ingestEvents>({ ...input, counters: { ...counters, generation: counters.generation + 1 } });
  return counters;
}

function add(c: IngestCounters, r: IngestBatchResult): void {
  if (r.pulled === 0) return;
  c.pulled += r.pulled;
  c.written += r.written;
  c.quarantined += r.quarantined;
  // Results of workers from before pipelined activities carry no count: they were one batch.
  c.batches += r.batches ?? 1;
  c.objects += r.objectCount ?? r.objects.length;
  c.lastBatchAt = r.finishedAt;
  if (r.oldestPublishTime) c.lagMs = Date.parse(r.finishedAt) - Date.parse(r.oldestPublishTime);
}
