import { condition, continueAsNew, log, patched, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { AlertActivities } from '../activities/alerts.js';
import type { IngestActivities, IngestBatchInput, IngestBatchResult } from '../activities/ingest.js';
import { evaluateIngestHealth, type IngestAlertSettings, type IngestHealthState } from '../core/ingest-alerts.js';
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
  /** Carried across continue-as-new: the recent window and open alert episodes. */
  health?: IngestHealthState;
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

const { ingestAlertSettings } = proxyActivities<IngestActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 5 },
});

// raiseAlert never throws for a broken channel (it logs and gives up); the retries cover a lost worker.
const { raiseAlert } = proxyActivities<AlertActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', maximumAttempts: 3 },
});

/** Runs that record this marker ask the worker for alert thresholds and raise lag and quarantine alerts. */
export const INGEST_ALERTS_PATCH = 'ingest-alerts';

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
  // Alerting: thresholds from the worker's configuration, read once per run.
  let alerting: IngestAlertSettings | undefined;
  if (patched(INGEST_ALERTS_PATCH)) {
    try {
      alerting = await ingestAlertSettings();
    } catch (err) {
      log.error('ingestion alerts are off for this run: could not read their thresholds', { error: String(err) });
    }
  }
  let health: IngestHealthState = input.health ?? { window: [] };
  const alertsInFlight = new Set<Promise<void>>();
  const info = workflowInfo();
  const watch = (r: IngestBatchResult) => {
    if (alerting === undefined) return;
    const lagMs = r.oldestPublishTime ? Date.parse(r.finishedAt) - Date.parse(r.oldestPublishTime) : undefined;
    const report = evaluateIngestHealth(
      health,
      {
        at: Date.now(),
        pulled: r.pulled,
        quarantined: r.quarantined,
        ...(lagMs === undefined ? {} : { lagMs }),
        ...(r.reasons ? { reasons: r.reasons } : {}),
      },
      alerting,
      { subscription: input.subscription, workflow: { namespace: info.namespace, workflowId: info.workflowId, runId: info.runId } },
    );
    health = report.state;
    counters.alerts = {
      raised: (counters.alerts?.raised ?? 0) + report.alerts.length,
      ...(health.lagSince === undefined ? {} : { lagSince: health.lagSince }),
      ...(health.quarantineSince === undefined ? {} : { quarantineSince: health.quarantineSince }),
      ...(report.quarantineShare === undefined ? {} : { quarantineShare: report.quarantineShare }),
    };
    for (const episode of report.recovered) log.info('ingestion alert episode ended', { episode, subscription: input.subscription });
    for (const alert of report.alerts) {
      // In the background: a slow or broken alert channel never holds up or fails ingestion.
      const p: Promise<void> = raiseAlert(alert)
        .then(() => undefined)
        .catch((err: unknown) => log.error('could not raise an ingestion alert', { dedupKey: alert.dedupKey, error: String(err) }))
        .finally(() => alertsInFlight.delete(p));
      alertsInFlight.add(p);
    }
  };

  const inFlight = new Map<number, Promise<[number, IngestBatchResult]>>();
  let launched = 0;
  let emptyInARow = 0;
  let finishing: 'idle' | 'renew' | undefined;
  for (;;) {
    while (!finishing && !counters.paused && inFlight.size < input.concurrency) {
      const id = launched++;
      inFlight.set(
        id,
        ingestBatch(batch).then((r): [number, IngestBatchResult] => [id, r]),
      );
    }
    if (inFlight.size === 0) {
      if (finishing) break;
      await condition(() => !counters.paused);
      continue;
    }
    const [id, result] = await Promise.race(inFlight.values());
    inFlight.delete(id);
    add(counters, result);
    watch(result);
    emptyInARow = result.pulled === 0 ? emptyInARow + 1 : 0;
    if (!finishing && input.stopWhenIdle && emptyInARow >= input.concurrency) finishing = 'idle';
    if (!finishing && (launched >= BATCHES_PER_RUN || workflowInfo().continueAsNewSuggested)) finishing = 'renew';
  }
  // Alerts being raised finish in this run rather than be abandoned by continue-as-new.
  await Promise.all(alertsInFlight);
  if (finishing === 'idle') return counters;
  await continueAsNew<typeof ingestEvents>({
    ...input,
    counters: { ...counters, generation: counters.generation + 1 },
    ...(alerting === undefined ? {} : { health }),
  });
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
