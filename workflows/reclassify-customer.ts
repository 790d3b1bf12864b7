/**
 * reclassifyCustomer: one workflow per customer (id `reclassify/<customerId>`), fed by the
 * trigger listener. Each step takes every queued event (a burst is one step) and runs one local
 * activity that updates the features, assigns the segment and writes the profile with one
 * conditional Firestore write, so no server round trip stands between the workflow task and the
 * visible profile. A segment change fans out webhook deliveries as regular activities that
 * retry in the background (the profile is already written); one that gives up raises an alert.
 * The idle period is one timer per run, re-armed only when events came in meanwhile, so a step
 * adds little history; the workflow ends after `idleMinutes` idle and continues as new before
 * its history grows large. patched(SINGLE_STEP_PATCH) keeps older runs replaying unchanged.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  continueAsNew,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { alertDedupKey, type Alert } from '../core/alerts.js';
import type { SegmentRef } from '../core/profile.js';
import type { createAlertActivities } from '../activities/alerts.js';
import type { ReclassifyActivities } from '../activities/reclassify.js';
import type { WebhookActivities } from '../activities/webhooks.js';
import {
  reclassifyStateQuery,
  triggerEventSignal,
  triggerEventsSignal,
  type ReclassifyInput,
  type ReclassifyResult,
  type ReclassifyState,
  type ReclassifyStepSummary,
  type ReclassifyTotals,
} from './reclassify-messages.js';
import type { TriggerSignal } from '../core/realtime-features.js';

type AlertActivities = ReturnType<typeof createAlertActivities>;

const { reclassifyCustomerEvents, prepareReclassification, writeReclassifiedProfile } = proxyLocalActivities<ReclassifyActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200 milliseconds', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 10 },
});

/** Runs that record this marker take the single-activity step and the one idle timer. */
export const SINGLE_STEP_PATCH = 'reclassify-single-step';

const { subscribersForSegmentChange } = proxyLocalActivities<WebhookActivities>({
  startToCloseTimeout: '5 seconds',
});

/** Webhooks: backoff from 1 s to 5 min, about an hour in all, then an alert. */
export const WEBHOOK_RETRY = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '5 minutes',
  maximumAttempts: 15,
} as const;

const { deliverSegmentChange } = proxyActivities<WebhookActivities>({
  startToCloseTimeout: '1 minute',
  retry: WEBHOOK_RETRY,
});

const { raiseAlert } = proxyActivities<AlertActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 3 },
});

const DEFAULT_MAX_HISTORY_EVENTS = 2_000;
/** Pause before a batch that failed through its local retries is tried again. */
const RETRY_PAUSE = '30 seconds';
const RECENT_EVENT_IDS = 500;
const MAX_FAILED_DELIVERIES_KEPT = 50;

function emptyTotals(): ReclassifyTotals {
  return { steps: 0, events: 0, duplicates: 0, segmentChanges: 0, webhooksDelivered: 0, webhooksFailed: 0, skippedSteps: 0 };
}

export async function reclassifyCustomer(input: ReclassifyInput): Promise<ReclassifyResult> {
  const { customerId, idleMinutes } = input;
  const maxHistory = input.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS;
  const queue: TriggerSignal[] = [...(input.pending ?? [])];
  const recent: string[] = [...(input.recentEventIds ?? [])];
  const seen = new Set(recent);
  const totals: ReclassifyTotals = { ...emptyTotals(), ...input.totals };
  const failedDeliveries: ReclassifyState['failedDeliveries'] = [];
  const deliveries = new Set<Promise<void>>();
  let lastStep: ReclassifyStepSummary | null = null;
  let modelVersion: string | undefined;

  setHandler(triggerEventSignal, (signal) => {
    queue.push(signal);
  });
  setHandler(triggerEventsSignal, ({ events }) => {
    queue.push(...events);
  });
  setHandler(reclassifyStateQuery, () => ({ customerId, pending: queue.length, totals, lastStep, failedDeliveries }));

  const remember = (eventId: string) => {
    seen.add(eventId);
    recent.push(eventId);
    if (recent.length > RECENT_EVENT_IDS) seen.delete(recent.shift()!);
  };

  function deliverInBackground(
    change: { deliveryId: string; previous: SegmentRef | null; next: SegmentRef; modelVersion: string; occurredAt: string },
    subscriberId: string,
  ) {
    const p = (async () => {
      try {
        const result = await deliverSegmentChange({
          deliveryId: change.deliveryId,
          customerId,
          oldSegment: change.previous,
          newSegment: change.next,
          modelVersion: change.modelVersion,
          occurredAt: change.occurredAt,
          subscriberId,
        });
        if (result.delivered) totals.webhooksDelivered += 1;
      } catch (err) {
        const error = err instanceof ActivityFailure && err.cause ? err.cause.message : err instanceof Error ? err.message : String(err);
        totals.webhooksFailed += 1;
        failedDeliveries.push({ deliveryId: change.deliveryId, subscriberId, error });
        if (failedDeliveries.length > MAX_FAILED_DELIVERIES_KEPT) failedDeliveries.shift();
        log.error('segment-change webhook failed after its last attempt', {
          customerId,
          subscriberId,
          deliveryId: change.deliveryId,
          error,
        });
        await raiseAlert(webhookFailedAlert(customerId, subscriberId, change.deliveryId, error));
      }
    })();
    deliveries.add(p);
    void p.finally(() => deliveries.delete(p));
  }

  /** 'retry' when Firestore or GCS stayed unavailable through the local retries: the batch is queued again. */
  async function step(batch: TriggerSignal[]): Promise<'done' | 'skipped' | 'retry'> {
    const events = batch.map((s) => s.event);
    try {
      return singleStep ? await reclassifyInOneActivity(batch) : await reclassify(batch, events);
    } catch (err) {
      const cause = err instanceof ActivityFailure ? err.cause : undefined;
      const error = cause?.message ?? String(err);
      if (cause instanceof ApplicationFailure && cause.nonRetryable) {
        // No current model, bad input: the batch path will still see these events.
        totals.skippedSteps += 1;
        log.error('reclassification skipped', { customerId, events: events.length, error });
        return 'skipped';
      }
      log.warn('reclassification failed; the events are queued again', { customerId, events: events.length, error });
      return 'retry';
    }
  }

  async function reclassifyInOneActivity(batch: TriggerSignal[]): Promise<'done'> {
    const r = await reclassifyCustomerEvents({ customerId, events: batch });
    totals.steps += 1;
    totals.events += batch.length;
    lastStep = {
      events: batch.length,
      segment: r.segment,
      previousSegment: r.previousSegment,
      modelVersion: r.modelVersion,
      written: r.written,
      segmentChanged: r.segmentChanged,
      latencies: r.latencies,
    };
    if (modelVersion !== r.modelVersion) {
      modelVersion = r.modelVersion;
      upsertSearchAttributes({ ModelVersion: [modelVersion] });
    }
    if (!r.written || !r.segmentChanged) return 'done';
    totals.segmentChanges += 1;
    const change = {
      deliveryId: deliveryIdFor(r.modelVersion, r.segment.id, batch),
      previous: r.previousSegment,
      next: r.segment,
      modelVersion: r.modelVersion,
      occurredAt: r.writtenAt,
    };
    for (const subscriberId of r.subscriberIds) deliverInBackground(change, subscriberId);
    return 'done';
  }

  /** Stable for this change whatever retries or replays happen; receivers deduplicate on it. */
  function deliveryIdFor(version: string, segmentId: number, batch: TriggerSignal[]): string {
    const newest = batch
      .map((s) => s.event)
      .sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts) || a.event_id.localeCompare(b.event_id))
      .at(-1)!;
    return `${customerId}:${version}:${segmentId}:${newest.event_id}`;
  }

  async function reclassify(batch: TriggerSignal[], events: TriggerSignal['event'][]): Promise<'done'> {
    const prepared = await prepareReclassification({ customerId, events });
    const write = await writeReclassifiedProfile({
      profile: prepared.profile,
      events: batch.map((s) => ({ eventId: s.event.event_id, ts: s.event.ts, publishTime: s.publishTime })),
    });
    const next: SegmentRef = {
      id: prepared.profile.segment_id,
      label: prepared.profile.segment_label,
      parent: prepared.profile.parent_segment ?? null,
    };
    totals.steps += 1;
    totals.events += events.length;
    lastStep = {
      events: events.length,
      segment: next,
      previousSegment: write.previousSegment,
      modelVersion: prepared.profile.model_version,
      written: write.written,
      segmentChanged: write.segmentChanged,
      latencies: write.latencies,
    };
    if (modelVersion !== prepared.profile.model_version) {
      modelVersion = prepared.profile.model_version;
      upsertSearchAttributes({ ModelVersion: [modelVersion] });
    }
    if (!write.written || !write.segmentChanged) return 'done';
    totals.segmentChanges += 1;

    const newest = [...events].sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts) || a.event_id.localeCompare(b.event_id)).at(-1)!;
    const change = {
      // Stable for this change whatever retries or replays happen; receivers deduplicate on it.
      deliveryId: `${customerId}:${prepared.profile.model_version}:${next.id}:${newest.event_id}`,
      previous: write.previousSegment,
      next,
      modelVersion: prepared.profile.model_version,
      occurredAt: write.writtenAt,
    };
    // The profile is written: from here on nothing may send the batch round again (it would count twice).
    try {
      const subscribers = await subscribersForSegmentChange({ oldSegment: write.previousSegment, newSegment: next });
      for (const subscriberId of subscribers) deliverInBackground(change, subscriberId);
    } catch (err) {
      log.error('could not list webhook subscribers; this segment change is not delivered', {
        customerId,
        deliveryId: change.deliveryId,
        error: String(err),
      });
    }
    return 'done';
  }

  const idleMs = Math.round(idleMinutes * 60_000);
  // Decided once per run, before the first command: a run started by older code replays its
  // whole history on the old path (two local activities and a timer per step).
  const singleStep = patched(SINGLE_STEP_PATCH);

  /** Takes what is queued, minus duplicates, and runs one step on it. */
  async function drain(): Promise<void> {
    const batch: TriggerSignal[] = [];
    const inBatch = new Set<string>();
    for (const s of queue.splice(0)) {
      if (seen.has(s.event.event_id) || inBatch.has(s.event.event_id)) totals.duplicates += 1;
      else {
        inBatch.add(s.event.event_id);
        batch.push(s);
      }
    }
    if (batch.length === 0) return;
    const outcome = await step(batch);
    if (outcome === 'retry') {
      queue.unshift(...batch);
      await sleep(RETRY_PAUSE);
    } else for (const id of inBatch) remember(id);
  }

  async function continueAsNewIfLong(): Promise<void> {
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength >= maxHistory) {
      await Promise.all([...deliveries]);
      await continueAsNew<typeof reclassifyCustomer>({
        customerId,
        idleMinutes,
        maxHistoryEvents: input.maxHistoryEvents,
        pending: queue.splice(0),
        recentEventIds: recent,
        totals,
      });
    }
  }

  if (singleStep) {
    // One idle timer at a time: it sleeps until `idleMs` after the last step, and when it fires
    // early (events came in meanwhile) it sleeps again for the rest.
    let lastActive = Date.now();
    let idle = false;
    const watchIdle = async () => {
      for (;;) {
        const left = lastActive + idleMs - Date.now();
        if (left <= 0) break;
        await sleep(left);
      }
      idle = true;
    };
    let watching = watchIdle();
    for (;;) {
      await condition(() => queue.length > 0 || idle);
      if (queue.length > 0) {
        await drain();
        lastActive = Date.now();
        // The timer ran out just as events came in: this step counts as activity, so watch again.
        if (idle) {
          idle = false;
          watching = watchIdle();
        }
        await continueAsNewIfLong();
        continue;
      }
      if (deliveries.size === 0) break;
      // Webhooks still retrying keep the run open; an event meanwhile is handled as usual.
      await condition(() => deliveries.size === 0 || queue.length > 0);
      if (queue.length === 0) break;
      idle = false;
      lastActive = Date.now();
      await watching;
      watching = watchIdle();
    }
    return { customerId, ended: 'idle', totals, lastStep };
  }

  for (;;) {
    const woke = await condition(() => queue.length > 0, idleMs);
    if (!woke && queue.length === 0) {
      if (deliveries.size === 0) break;
      // Webhooks still retrying keep the run open; an event meanwhile is handled as usual.
      await condition(() => deliveries.size === 0 || queue.length > 0);
      continue;
    }
    await drain();
    await continueAsNewIfLong();
  }

  return { customerId, ended: 'idle', totals, lastStep };
}

function webhookFailedAlert(customerId: string, subscriberId: string, deliveryId: string, error: string): Alert {
  const info = workflowInfo();
  return {
    kind: 'webhook_delivery_failed',
    severity: 'error',
    summary: `segment-change webhook to ${subscriberId} failed for customer ${customerId}`,
    message: `Delivery ${deliveryId} failed after ${WEBHOOK_RETRY.maximumAttempts} attempts: ${error}`,
    dedupKey: alertDedupKey('webhook_delivery_failed', subscriberId, deliveryId),
    occurredAt: new Date().toISOString(),
    workflow: { namespace: info.namespace, workflowId: info.workflowId, runId: info.runId },
    links: [],
  };
}
