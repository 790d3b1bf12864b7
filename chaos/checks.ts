/**
 * The invariants of a chaos run, each a pure function of what the run observed
 * (lake contents, warehouse rows, DAG runs, alerts, profiles, webhook receipts),
 * returning figures for the table and the violations found.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Alert } from '../core/alerts.js';
import type { LakeRecord, QuarantineRecord } from '../core/lake.js';
import type { Profile, SegmentRef } from '../core/profile.js';
import { assignCustomer, customerFeatureRow } from '../core/segmentation/assign.js';
import type { SegmentModel } from '../core/segmentation/model.js';
import type { ChaosWorkload } from './workload.js';

export interface Violation {
  invariant: string;
  message: string;
}

function sample<T>(items: Iterable<T>, n = 5): string {
  const all = [...items];
  return (
    all
      .slice(0, n)
      .map((x) => JSON.stringify(x))
      .join(', ') + (all.length > n ? `, ... (${all.length} in all)` : '')
  );
}

// ---------------------------------------------------------------- lake and warehouse

export interface WarehouseFigures {
  rawRows: number;
  stagedRows: number;
  stagedDistinct: number;
  /** Valid events not in staging.events. */
  lost: number;
  /** Event ids in staging that were never published as valid events. */
  unexpected: number;
  /** Rows beyond one per event id in staging (must be 0). */
  duplicatedInStaging: number;
  /** Deliveries in raw.events that staging collapsed (duplicate publishes and redeliveries). */
  duplicatesSuppressed: number;
  /** Hostile events whose properties did not come back exactly as published. */
  hostileAltered: number;
}

export function checkStaging(
  w: ChaosWorkload,
  observed: { rawRows: number; stagedRows: number; stagedIds: readonly string[]; hostileProperties: ReadonlyMap<string, string> },
): { figures: WarehouseFigures; violations: Violation[] } {
  const violations: Violation[] = [];
  const staged = new Set(observed.stagedIds);
  const lost = [...w.validIds].filter((id) => !staged.has(id));
  const unexpected = [...staged].filter((id) => !w.validIds.has(id));
  const duplicatedInStaging = observed.stagedRows - staged.size;
  const altered = w.hostile.filter((h) => {
    const stored = observed.hostileProperties.get(h.eventId);
    return stored === undefined || !isDeepStrictEqual(JSON.parse(stored), JSON.parse(JSON.stringify(h.properties)));
  });
  if (lost.length > 0)
    violations.push({
      invariant: 'staging_exact',
      message: `${lost.length} valid events are missing from staging.events: ${sample(lost)}`,
    });
  if (unexpected.length > 0)
    violations.push({
      invariant: 'staging_exact',
      message: `${unexpected.length} event ids in staging.events were never published as valid events: ${sample(unexpected)}`,
    });
  if (duplicatedInStaging !== 0)
    violations.push({
      invariant: 'staging_exact',
      message: `staging.events holds ${observed.stagedRows} rows for ${staged.size} event ids`,
    });
  if (altered.length > 0) {
    violations.push({
      invariant: 'staging_exact',
      message: `${altered.length} events with hostile strings were not stored verbatim: ${sample(altered.map((a) => a.eventId))}`,
    });
  }
  return {
    figures: {
      rawRows: observed.rawRows,
      stagedRows: observed.stagedRows,
      stagedDistinct: staged.size,
      lost: lost.length,
      unexpected: unexpected.length,
      duplicatedInStaging,
      duplicatesSuppressed: observed.rawRows - observed.stagedRows,
      hostileAltered: altered.length,
    },
    violations,
  };
}

export interface QuarantineFigures {
  records: number;
  distinctMalformed: number;
  missing: number;
  wrongReason: number;
  /** Quarantine records that are not one of the malformed messages (a valid event refused). */
  unexpected: number;
  /** Malformed messages found among the raw (accepted) events. */
  accepted: number;
}

export function checkQuarantine(
  w: ChaosWorkload,
  lake: { raw: readonly LakeRecord[]; quarantine: readonly QuarantineRecord[] },
): { figures: QuarantineFigures; violations: Violation[] } {
  const violations: Violation[] = [];
  const byIndex = new Map<string, QuarantineRecord[]>();
  const unexpected: string[] = [];
  for (const q of lake.quarantine) {
    let attrs: Record<string, string> = {};
    try {
      attrs = JSON.parse(q.attributes) as Record<string, string>;
    } catch {
      /* counted as unexpected below */
    }
    const index = attrs.test_index;
    if (index === undefined) {
      unexpected.push(q.message_id);
      continue;
    }
    const list = byIndex.get(index) ?? [];
    list.push(q);
    byIndex.set(index, list);
  }
  const missing: number[] = [];
  const wrongReason: string[] = [];
  for (const m of w.malformed) {
    const records = byIndex.get(String(m.index));
    if (!records) {
      missing.push(m.index);
      continue;
    }
    for (const r of records) {
      if (!r.reasons.some((reason) => reason.code === m.kind) || r.reasons.some((reason) => reason.message.length === 0)) {
        wrongReason.push(`#${m.index} expected ${m.kind}, found ${r.reasons.map((x) => x.code).join('+')}`);
      }
    }
  }
  const extraIndexes = [...byIndex.keys()].filter((k) => !w.malformed.some((m) => String(m.index) === k));
  // A malformed message never has a valid event id, so any raw record outside validIds is one that got in.
  const accepted = lake.raw.filter((r) => !w.validIds.has(r.event_id)).map((r) => r.event_id);
  if (missing.length > 0)
    violations.push({
      invariant: 'quarantine_exact',
      message: `${missing.length} malformed messages are not in the quarantine: indexes ${sample(missing)}`,
    });
  if (wrongReason.length > 0)
    violations.push({
      invariant: 'quarantine_exact',
      message: `${wrongReason.length} quarantine records lack the expected reason: ${sample(wrongReason)}`,
    });
  if (unexpected.length + extraIndexes.length > 0) {
    violations.push({
      invariant: 'quarantine_exact',
      message: `${unexpected.length + extraIndexes.length} quarantine records are not malformed messages of the workload: ${sample([...unexpected, ...extraIndexes])}`,
    });
  }
  if (accepted.length > 0)
    violations.push({
      invariant: 'quarantine_exact',
      message: `${accepted.length} lake records are not valid events of the workload: ${sample(accepted)}`,
    });
  return {
    figures: {
      records: lake.quarantine.length,
      distinctMalformed: byIndex.size,
      missing: missing.length,
      wrongReason: wrongReason.length,
      unexpected: unexpected.length + extraIndexes.length,
      accepted: accepted.length,
    },
    violations,
  };
}

// ---------------------------------------------------------------- DAG runs and alerts

export interface DagRunRecord {
  workflowId: string;
  runId: string;
  intervalStart: string;
  status: string;
  rerunOf?: string;
}

export interface DagFigures {
  intervals: number;
  runs: number;
  succeeded: number;
  failed: number;
  /** dag_run_failed alerts received. */
  alerts: number;
  /** Intervals whose last run succeeded. */
  intervalsDone: number;
}

export function checkDagRuns(
  intervals: readonly string[],
  runs: readonly DagRunRecord[],
  alerts: readonly Alert[],
): { figures: DagFigures; violations: Violation[] } {
  const violations: Violation[] = [];
  const dagAlerts = alerts.filter((a) => a.kind === 'dag_run_failed');
  let intervalsDone = 0;
  for (const start of intervals) {
    const mine = runs.filter((r) => r.intervalStart === start);
    if (mine.length === 0)
      violations.push({ invariant: 'dag_runs_alerted', message: `no DAG run found for the interval starting ${start}` });
    if (mine.some((r) => r.status === 'COMPLETED')) intervalsDone++;
    for (const r of mine) {
      const forRun = dagAlerts.filter((a) => a.workflow?.runId === r.runId);
      if (r.status === 'COMPLETED' && forRun.length > 0) {
        violations.push({
          invariant: 'dag_runs_alerted',
          message: `run ${r.workflowId} (${r.runId}) succeeded but raised ${forRun.length} alert(s)`,
        });
      } else if (r.status === 'FAILED' && forRun.length !== 1) {
        violations.push({
          invariant: 'dag_runs_alerted',
          message: `run ${r.workflowId} (${r.runId}) failed with ${forRun.length} alerts; expected exactly one`,
        });
      } else if (r.status !== 'COMPLETED' && r.status !== 'FAILED') {
        violations.push({
          invariant: 'dag_runs_alerted',
          message: `run ${r.workflowId} (${r.runId}) ended ${r.status}; expected succeeded, or failed with one alert`,
        });
      }
    }
  }
  const known = new Set(runs.map((r) => r.runId));
  const stray = dagAlerts.filter((a) => !known.has(a.workflow?.runId ?? ''));
  if (stray.length > 0)
    violations.push({
      invariant: 'dag_runs_alerted',
      message: `${stray.length} DAG alerts name no run of the covered intervals: ${sample(stray.map((a) => a.dedupKey))}`,
    });
  return {
    figures: {
      intervals: intervals.length,
      runs: runs.length,
      succeeded: runs.filter((r) => r.status === 'COMPLETED').length,
      failed: runs.filter((r) => r.status === 'FAILED').length,
      alerts: dagAlerts.length,
      intervalsDone,
    },
    violations,
  };
}

// ---------------------------------------------------------------- profiles

export interface ProfileFigures {
  checked: number;
  mismatched: number;
  otherModel: number;
}

/** Every stored profile carries the segment a fresh assignment of its own features gives, with the current model. */
export function checkProfiles(
  model: SegmentModel,
  profiles: readonly Profile[],
  invariant = 'profiles_match_batch',
): { figures: ProfileFigures; violations: Violation[] } {
  const mismatched: string[] = [];
  const otherModel: string[] = [];
  for (const p of profiles) {
    if (p.model_version !== model.version) {
      otherModel.push(p.customer_id);
      continue;
    }
    const a = assignCustomer(model, customerFeatureRow(p.features, p.demographics));
    if (a.segmentId !== p.segment_id || a.label !== p.segment_label)
      mismatched.push(`${p.customer_id}: stored ${p.segment_id}, fresh ${a.segmentId}`);
  }
  const violations: Violation[] = [];
  if (mismatched.length > 0)
    violations.push({
      invariant,
      message: `${mismatched.length} profiles disagree with a fresh assignment of their features: ${sample(mismatched)}`,
    });
  if (otherModel.length > 0)
    violations.push({
      invariant,
      message: `${otherModel.length} profiles name another model than ${model.version}: ${sample(otherModel)}`,
    });
  return { figures: { checked: profiles.length, mismatched: mismatched.length, otherModel: otherModel.length }, violations };
}

// ---------------------------------------------------------------- webhooks

export interface WebhookReceipt {
  deliveryId: string;
  customerId: string;
  oldSegment: SegmentRef | null;
  newSegment: SegmentRef;
  body: string;
  signatureOk: boolean;
}

export interface WebhookFigures {
  received: number;
  distinctDeliveries: number;
  /** Segment changes the reclassify workflows recorded (sum of their totals). */
  changesRecorded: number;
  /** Receipts of a delivery id already received: at-least-once retries receivers drop by id. */
  sameIdRepeats: number;
  /** Customers whose chain of deliveries does not lead from no segment to their stored segment. */
  brokenChains: number;
  badSignatures: number;
  deliveriesGivenUp: number;
}

/**
 * No delivery lost, none sent twice under different ids, none altered: the distinct
 * deliveries match the changes the workflows recorded, and for each real-time customer
 * they form one chain from "no segment" to the segment stored in Firestore.
 */
export function checkWebhooks(
  receipts: readonly WebhookReceipt[],
  recorded: { segmentChanges: number; webhooksFailed: number },
  finalSegments: ReadonlyMap<string, number>,
): { figures: WebhookFigures; violations: Violation[] } {
  const violations: Violation[] = [];
  const byId = new Map<string, WebhookReceipt>();
  let repeats = 0;
  const altered: string[] = [];
  for (const r of receipts) {
    const first = byId.get(r.deliveryId);
    if (first === undefined) byId.set(r.deliveryId, r);
    else {
      repeats++;
      if (first.body !== r.body) altered.push(r.deliveryId);
    }
  }
  const badSignatures = receipts.filter((r) => !r.signatureOk).length;
  const byCustomer = new Map<string, WebhookReceipt[]>();
  for (const r of byId.values()) byCustomer.set(r.customerId, [...(byCustomer.get(r.customerId) ?? []), r]);
  const broken: string[] = [];
  for (const [customerId, finalSegment] of finalSegments) {
    const edges = byCustomer.get(customerId) ?? [];
    // An Euler path from "none" to the final segment: "none" leaves once, every segment is
    // entered as often as left, except the final one, entered once more.
    const balance = new Map<string, number>();
    const bump = (k: string, d: number) => balance.set(k, (balance.get(k) ?? 0) + d);
    for (const e of edges) {
      bump(e.oldSegment === null ? 'none' : String(e.oldSegment.id), -1);
      bump(String(e.newSegment.id), +1);
    }
    const ok =
      edges.length > 0 &&
      balance.get('none') === -1 &&
      [...balance.entries()].every(([k, v]) => k === 'none' || v === (k === String(finalSegment) ? 1 : 0)) &&
      (balance.get(String(finalSegment)) ?? 0) === 1;
    if (!ok)
      broken.push(
        `${customerId}: ${edges.map((e) => `${e.oldSegment?.id ?? 'none'}->${e.newSegment.id}`).join(',') || 'no delivery'}, stored ${finalSegment}`,
      );
  }
  if (byId.size !== recorded.segmentChanges) {
    violations.push({
      invariant: 'webhooks_exact',
      message: `${byId.size} distinct deliveries received for ${recorded.segmentChanges} segment changes recorded by the workflows`,
    });
  }
  if (broken.length > 0)
    violations.push({
      invariant: 'webhooks_exact',
      message: `${broken.length} customers' deliveries do not lead to their stored segment (lost or extra deliveries): ${sample(broken)}`,
    });
  if (altered.length > 0)
    violations.push({
      invariant: 'webhooks_exact',
      message: `${altered.length} delivery ids arrived with different bodies: ${sample(altered)}`,
    });
  if (badSignatures > 0)
    violations.push({ invariant: 'webhooks_exact', message: `${badSignatures} deliveries failed signature verification` });
  if (recorded.webhooksFailed > 0)
    violations.push({ invariant: 'webhooks_exact', message: `${recorded.webhooksFailed} deliveries gave up after their last attempt` });
  return {
    figures: {
      received: receipts.length,
      distinctDeliveries: byId.size,
      changesRecorded: recorded.segmentChanges,
      sameIdRepeats: repeats,
      brokenChains: broken.length,
      badSignatures,
      deliveriesGivenUp: recorded.webhooksFailed,
    },
    violations,
  };
}
