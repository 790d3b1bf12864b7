/**
 * The reclassifyCustomer workflow's messages and input, declared once for the
 * trigger listener (client side) and the workflow.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { TriggerSignal } from '../core/realtime-features.js';

export const RECLASSIFY_WORKFLOW = 'reclassifyCustomer';

/**
 * `<prefix>reclassify/<customerId>`: deterministic per customer, so signal-with-start
 * always reaches the customer's one workflow. The prefix is SEGFLOW_SCHEDULE_PREFIX
 * (config.schedules.prefix), as for every other id segflow creates, so deployments or
 * tests sharing a namespace do not signal each other's workflows.
 */
export function reclassifyWorkflowId(customerId: string, prefix = ''): string {
  return `${prefix}reclassify/${customerId}`;
}

/** One event per signal: what listeners before the batched signal sent; still handled. */
export const triggerEventSignal = defineSignal<[TriggerSignal]>('triggerEvent');

/** Several events of one customer in one signal (the listener coalesces a customer's events while its previous signal is in flight). */
export interface TriggerBatchSignal {
  events: TriggerSignal[];
}

export const triggerEventsSignal = defineSignal<[TriggerBatchSignal]>('triggerEvents');

export interface ReclassifyInput {
  customerId: string;
  /** Idle period after which the workflow ends (a later event starts a new run). */
  idleMinutes: number;
  /** Events carried over by continue-as-new. */
  pending?: TriggerSignal[];
  /** Recently processed event ids (duplicates from Pub/Sub redelivery are dropped), carried over by continue-as-new. */
  recentEventIds?: string[];
  /** Continue-as-new once the history has this many events (default 2000), or earlier when Temporal suggests it. */
  maxHistoryEvents?: number;
  /** Totals carried over by continue-as-new. */
  totals?: ReclassifyTotals;
}

export interface ReclassifyTotals {
  steps: number;
  events: number;
  duplicates: number;
  segmentChanges: number;
  webhooksDelivered: number;
  webhooksFailed: number;
  /** Batches that could not be classified (no current model, invalid stored data); logged and alerted. */
  skippedSteps: number;
}

export interface StepLatency {
  eventId: string;
  /** Profile write minus event time. */
  fromEventMs: number;
  /** Profile write minus Pub/Sub publish time. */
  fromPublishMs: number;
}

export interface ReclassifyStepSummary {
  events: number;
  segment: { id: number; label: string };
  previousSegment: { id: number; label: string } | null;
  modelVersion: string;
  written: boolean;
  segmentChanged: boolean;
  latencies: StepLatency[];
}

export interface ReclassifyState {
  customerId: string;
  pending: number;
  totals: ReclassifyTotals;
  lastStep: ReclassifyStepSummary | null;
  failedDeliveries: Array<{ deliveryId: string; subscriberId: string; error: string }>;
}

export const reclassifyStateQuery = defineQuery<ReclassifyState>('reclassifyState');

export interface ReclassifyResult {
  customerId: string;
  /** Why this run ended. */
  ended: 'idle';
  totals: ReclassifyTotals;
  lastStep: ReclassifyStepSummary | null;
}
