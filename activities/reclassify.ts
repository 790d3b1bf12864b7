/**
 * Real-time reclassification of one customer. reclassifyCustomerEvents is the one local
 * activity a reclassifyCustomer step runs: read the stored profile (unless this process wrote
 * it last), apply the events (core/realtime-features), assign with the current model (the code
 * the batch SQL mirrors), and write the profile unless the stored one is newer, conditionally,
 * so no update is lost; then report latency and the webhook subscribers of a segment change.
 * Retries and replays recompute from what is stored and skip events the document lists as
 * applied, so a worker killed after a commit neither counts an event twice nor loses a change.
 * prepareReclassification and writeReclassifiedProfile do the same in two activities; they stay
 * for runs started before reclassifyCustomerEvents existed, which replay with them.
 * The current model (via models/segmentation/current.json) and the RFM score bounds (from
 * marts.customer_features; defaults until the warehouse has scored a buyer) are re-read in the
 * background after their TTLs, so a promotion reaches the real-time path within one.
 */
import type { BigQuery } from '@google-cloud/bigquery';
import type { Firestore } from '@google-cloud/firestore';
import type { Storage } from '@google-cloud/storage';
import { asyncLocalStorage } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { createRepeatedLog } from '../core/repeated-log.js';
import { ProfileSchema, profileProblems, segmentOf, type Profile, type SegmentRef } from '../core/profile.js';
import {
  applyTriggerEvents,
  DEFAULT_RFM_SCORE_BOUNDS,
  emptyFeatureState,
  type FeatureState,
  type RfmScoreBounds,
  type ScoreBound,
  type TriggerEvent,
} from '../core/realtime-features.js';
import { assignCustomer, customerFeatureRow } from '../core/segmentation/assign.js';
import type { SegmentModel } from '../core/segmentation/model.js';
import { qualifiedTable } from '../elt/names.js';
import { subscribersForChange } from '../core/webhook-config.js';
import type { TriggerSignal } from '../core/realtime-features.js';
import { createProfileStore, createProfileUpdater, type WriteProfileResult } from '../stores/profiles.js';
import { CURRENT_MODEL_OBJECT, loadCurrentPointer, loadModelAt } from '../stores/model-registry.js';
import { currentActivity } from './heartbeat.js';

export interface ReclassifyActivityDeps {
  storage: Storage;
  bigquery: BigQuery;
  firestore: Firestore;
  config: Pick<Config, 'lake' | 'firestore' | 'warehouse' | 'gcp' | 'webhooks'>;
  logger: Logger;
  /** Re-read current.json at most this often (SEGFLOW_MODEL_POINTER_TTL_MS; default here 5 s). */
  modelPointerTtlMs?: number;
  /** Re-read the RFM score bounds this often (default 10 min). */
  scoreBoundsTtlMs?: number;
  /** How long the first step waits for the score bounds before using the defaults (default 3 s). */
  scoreBoundsWaitMs?: number;
  now?: () => Date;
}

export interface PrepareReclassificationInput {
  customerId: string;
  events: TriggerEvent[];
}

export interface PreparedReclassification {
  profile: Profile;
  previousSegment: SegmentRef | null;
  /** Where the features came from: the stored profile, or the events alone (a customer nobody knew). */
  base: 'profile' | 'event_only';
  /** Squared distance margin to the runner-up centroid; near 0 means a near tie. */
  margin: number | null;
  scoreBounds: string;
}

export interface WriteReclassifiedInput {
  profile: Profile;
  events: Array<{ eventId: string; ts: string; publishTime: string }>;
}

export interface WriteReclassifiedResult extends WriteProfileResult {
  writtenAt: string;
  latencies: Array<{ eventId: string; fromEventMs: number; fromPublishMs: number }>;
}

export interface ReclassifyEventsInput {
  customerId: string;
  /** The step's events, as the listener signalled them (publishTime for the latency). */
  events: TriggerSignal[];
}

export interface ReclassifyEventsResult {
  segment: SegmentRef;
  previousSegment: SegmentRef | null;
  modelVersion: string;
  written: boolean;
  outcome: WriteProfileResult['outcome'];
  segmentChanged: boolean;
  writtenAt: string;
  base: 'profile' | 'event_only';
  latencies: Array<{ eventId: string; fromEventMs: number; fromPublishMs: number }>;
  /** Webhook subscribers whose filter asks for this change; empty unless the segment changed. */
  subscriberIds: string[];
}

const BoundsRowSchema = z.object({
  feature: z.enum(['recency_days', 'frequency', 'monetary']),
  score: z.coerce.number().int().min(1).max(5),
  bound: z.coerce.number(),
});

export function createReclassifyActivities(deps: ReclassifyActivityDeps) {
  const { storage, bigquery, firestore, config, logger } = deps;
  const now = deps.now ?? (() => new Date());
  const log = logger.child({ component: 'reclassify' });
  // A schema change makes every stored profile unreadable at once: one report per problem set.
  const repeated = createRepeatedLog(log);
  const profiles = createProfileStore({ firestore, config, logger, activity: currentActivity });
  const pointerTtl = deps.modelPointerTtlMs ?? 5_000;
  const boundsTtl = deps.scoreBoundsTtlMs ?? 600_000;
  const boundsWait = deps.scoreBoundsWaitMs ?? 3_000;

  // ---- current model, cached by version
  let model: { value: SegmentModel; checkedAt: number } | undefined;
  let modelLoading: Promise<SegmentModel> | undefined;

  async function refreshModel(): Promise<SegmentModel> {
    const pointer = await loadCurrentPointer(storage, config.lake.bucket);
    if (pointer === null) throw new NoCurrentModelError();
    let value = model?.value;
    if (value?.version !== pointer.version) {
      value = await loadModelAt(storage, pointer.uri);
      if (value.version !== pointer.version) {
        throw new Error(`${CURRENT_MODEL_OBJECT} names version ${pointer.version} but ${pointer.uri} holds ${value.version}`);
      }
      log.info({ modelVersion: value.version }, 'current segmentation model loaded');
    }
    model = { value, checkedAt: Date.now() };
    return value;
  }

  async function currentModel(): Promise<SegmentModel> {
    if (model && Date.now() - model.checkedAt < pointerTtl) return model.value;
    modelLoading ??= refreshModel().finally(() => (modelLoading = undefined));
    try {
      return await modelLoading;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (model) {
        log.warn({ error: reason, modelVersion: model.value.version }, 'could not re-read the current model; keeping the cached one');
        model.checkedAt = Date.now();
        return model.value;
      }
      if (err instanceof NoCurrentModelError) {
        throw ApplicationFailure.nonRetryable(
          `no current segmentation model: gs://${config.lake.bucket}/${CURRENT_MODEL_OBJECT} does not exist; ` +
            'run the nightly_segmentation DAG (or promote a model) before real-time reclassification can assign segments',
          'NoCurrentModel',
        );
      }
      throw ApplicationFailure.retryable(`reading the current segmentation model failed: ${reason}`, 'ModelUnavailable');
    }
  }

  // ---- RFM score bounds, refreshed in the background
  let bounds: { value: RfmScoreBounds; loadedAt: number } | undefined;
  let boundsLoading: Promise<RfmScoreBounds> | undefined;

  async function loadBounds(): Promise<RfmScoreBounds> {
    const table = qualifiedTable(config.gcp.projectId, config.warehouse.marts, 'customer_features');
    const where = 'WHERE frequency > 0 AND recency_days IS NOT NULL';
    const query = [
      `SELECT 'recency_days' AS feature, r_score AS score, MAX(recency_days) AS bound FROM ${table} ${where} GROUP BY r_score`,
      `SELECT 'frequency' AS feature, f_score AS score, MIN(frequency) AS bound FROM ${table} ${where} GROUP BY f_score`,
      `SELECT 'monetary' AS feature, m_score AS score, MIN(monetary) AS bound FROM ${table} ${where} GROUP BY m_score`,
    ].join('\nUNION ALL\n');
    const [rows] = await bigquery.query({ query, location: config.gcp.location });
    const parsed = z.array(BoundsRowSchema).parse(rows);
    if (parsed.length === 0) return DEFAULT_RFM_SCORE_BOUNDS;
    const pick = (feature: string): ScoreBound[] =>
      parsed.filter((r) => r.feature === feature).map((r) => ({ score: r.score, bound: r.bound }));
    return {
      source: `${config.warehouse.marts}.customer_features`,
      recency_days: pick('recency_days'),
      frequency: pick('frequency'),
      monetary: pick('monetary'),
    };
  }

  function startBoundsLoad(): Promise<RfmScoreBounds> {
    boundsLoading ??= loadBounds()
      .then((value) => {
        if (bounds?.value.source !== value.source) log.info({ source: value.source }, 'RFM score bounds loaded');
        bounds = { value, loadedAt: Date.now() };
        return value;
      })
      .catch((err: unknown) => {
        const fallback = bounds?.value ?? DEFAULT_RFM_SCORE_BOUNDS;
        log.warn(
          { error: err instanceof Error ? err.message : String(err), using: fallback.source },
          'could not read RFM score bounds from the warehouse; scores use the last known bounds',
        );
        bounds = { value: fallback, loadedAt: Date.now() };
        return fallback;
      })
      .finally(() => (boundsLoading = undefined));
    return boundsLoading;
  }

  async function scoreBounds(): Promise<RfmScoreBounds> {
    if (bounds) {
      if (Date.now() - bounds.loadedAt >= boundsTtl) void startBoundsLoad();
      return bounds.value;
    }
    // Only the first step waits, and not for long: a slow warehouse must not slow every step.
    const timeout = new Promise<RfmScoreBounds>((resolve) =>
      setTimeout(() => {
        if (!bounds) {
          log.warn(
            { waitedMs: boundsWait, using: DEFAULT_RFM_SCORE_BOUNDS.source },
            'RFM score bounds not loaded yet; using the defaults until they are',
          );
          bounds = { value: DEFAULT_RFM_SCORE_BOUNDS, loadedAt: 0 };
        }
        resolve(bounds.value);
      }, boundsWait).unref(),
    );
    return Promise.race([startBoundsLoad(), timeout]);
  }

  async function storedProfile(customerId: string): Promise<Profile | null> {
    const snap = await firestore.collection(config.firestore.profiles).doc(customerId).get();
    if (!snap.exists) return null;
    const parsed = ProfileSchema.safeParse(snap.data());
    if (parsed.success) return parsed.data;
    // The write path overwrites an unreadable document; better a profile from the event than none.
    const problems = profileProblems(parsed.error);
    repeated.log(
      'warn',
      `unreadable profile: ${problems.join('; ')}`,
      { customerId, problems },
      'stored profile is unreadable; reclassifying from the events alone',
    );
    return null;
  }

  /** The profile after `events`, from the stored one (or from nothing); pure given the model and bounds. */
  function reclassified(
    customerId: string,
    stored: Profile | null,
    events: readonly TriggerEvent[],
    segmentModel: SegmentModel,
    rfmBounds: RfmScoreBounds,
  ): { profile: Profile; margin: number | null } {
    const asOf = now().toISOString();
    const base: FeatureState = stored
      ? {
          features: stored.features,
          rfm: stored.rfm,
          demographics: stored.demographics,
          asOf: stored.source_event_time ?? stored.updated_at,
        }
      : emptyFeatureState(asOf);
    const next = applyTriggerEvents(base, events, { asOf, bounds: rfmBounds });
    const assignment = assignCustomer(segmentModel, customerFeatureRow(next.features, next.demographics));
    const newestEvent = events.reduce((a, e) => (Date.parse(e.ts) > Date.parse(a) ? e.ts : a), events[0]!.ts);
    // The profile reflects the stored data plus these events: its as-of time never moves backwards,
    // so a late event still lands (the tie goes to the later computation).
    const sourceEventTime =
      stored?.source_event_time !== undefined && Date.parse(stored.source_event_time) > Date.parse(newestEvent)
        ? stored.source_event_time
        : new Date(newestEvent).toISOString();
    const profile: Profile = {
      customer_id: customerId,
      segment_id: assignment.segmentId,
      segment_label: assignment.label,
      parent_segment: assignment.parent,
      model_version: assignment.modelVersion,
      features: next.features,
      rfm: next.rfm,
      demographics: next.demographics,
      updated_at: asOf,
      source_event_time: sourceEventTime,
    };
    return { profile, margin: assignment.margin };
  }

  function latenciesAt(written: Date, events: ReadonlyArray<{ eventId: string; ts: string; publishTime: string }>) {
    return events.map((e) => ({
      eventId: e.eventId,
      fromEventMs: written.getTime() - Date.parse(e.ts),
      fromPublishMs: written.getTime() - Date.parse(e.publishTime),
    }));
  }

  const updateProfile = createProfileUpdater({ firestore, config, logger });

  async function reclassifyCustomerEvents({ customerId, events: signals }: ReclassifyEventsInput): Promise<ReclassifyEventsResult> {
    if (signals.length === 0)
      throw ApplicationFailure.nonRetryable('reclassifyCustomerEvents: expected at least one event, got none', 'NoEvents');
    const events = signals.map((s) => s.event);
    const t0 = Date.now();
    // Both cached in this process: no round trip on a warm worker.
    const [segmentModel, rfmBounds] = await Promise.all([currentModel(), scoreBounds()]);
    const tInputs = Date.now();
    let margin: number | null = null;
    const result = await updateProfile(
      customerId,
      (stored, applied) => {
        // Events an earlier, lost attempt already applied are not applied again (see updateProfile).
        const fresh = events.filter((e) => !applied.has(e.event_id));
        const r = reclassified(customerId, stored, fresh.length > 0 ? fresh : events, segmentModel, rfmBounds);
        margin = r.margin;
        return r.profile;
      },
      // Local activities run in the workflow's context: the run id tells its own earlier writes apart.
      {
        eventIds: events.map((e) => e.event_id),
        writer: asyncLocalStorage.getStore()?.info.workflowExecution?.runId ?? 'outside-a-workflow',
      },
    );
    const written = now();
    const latencies = latenciesAt(
      written,
      signals.map((s) => ({ eventId: s.event.event_id, ts: s.event.ts, publishTime: s.publishTime })),
    );
    const segment = segmentOf(result.profile);
    const subscriberIds =
      result.written && result.segmentChanged
        ? subscribersForChange(config.webhooks, result.previousSegment, segment).map((s) => s.id)
        : [];
    log.info(
      {
        activity: 'reclassifyCustomerEvents',
        customerId,
        outcome: result.outcome,
        segmentId: segment.id,
        parentSegmentId: segment.parent?.id ?? null,
        segmentChanged: result.segmentChanged,
        modelVersion: result.profile.model_version,
        base: result.stored ? 'profile' : 'event_only',
        margin,
        events: events.length,
        inputsMs: tInputs - t0,
        writeMs: written.getTime() - tInputs,
        committedAt: result.committedAt,
        frequency: result.profile.rfm.frequency,
        maxFromEventMs: Math.max(...latencies.map((l) => l.fromEventMs)),
        maxFromPublishMs: Math.max(...latencies.map((l) => l.fromPublishMs)),
      },
      'customer reclassified',
    );
    return {
      segment,
      previousSegment: result.previousSegment,
      modelVersion: result.profile.model_version,
      written: result.written,
      outcome: result.outcome,
      segmentChanged: result.segmentChanged,
      writtenAt: written.toISOString(),
      base: result.stored ? 'profile' : 'event_only',
      latencies,
      subscriberIds,
    };
  }

  async function prepareReclassification({ customerId, events }: PrepareReclassificationInput): Promise<PreparedReclassification> {
    if (events.length === 0)
      throw ApplicationFailure.nonRetryable('prepareReclassification: expected at least one event, got none', 'NoEvents');
    const [stored, segmentModel, rfmBounds] = await Promise.all([storedProfile(customerId), currentModel(), scoreBounds()]);
    const { profile, margin } = reclassified(customerId, stored, events, segmentModel, rfmBounds);
    return {
      profile,
      previousSegment: stored ? segmentOf(stored) : null,
      base: stored ? 'profile' : 'event_only',
      margin,
      scoreBounds: rfmBounds.source,
    };
  }

  async function writeReclassifiedProfile({ profile, events }: WriteReclassifiedInput): Promise<WriteReclassifiedResult> {
    const result = await profiles.writeProfile(profile);
    const written = now();
    const latencies = latenciesAt(written, events);
    log.info(
      {
        activity: 'writeReclassifiedProfile',
        customerId: profile.customer_id,
        outcome: result.outcome,
        segmentId: profile.segment_id,
        segmentChanged: result.segmentChanged,
        events: events.length,
      },
      'customer reclassified',
    );
    return { ...result, writtenAt: written.toISOString(), latencies };
  }

  return { reclassifyCustomerEvents, prepareReclassification, writeReclassifiedProfile };
}

class NoCurrentModelError extends Error {}

export type ReclassifyActivities = ReturnType<typeof createReclassifyActivities>;
