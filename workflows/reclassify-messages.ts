/**
 * The reclassifyCustomer workflow's messages and input, declared once for the
 * trigger listener (client side) and the workflow.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { TriggerEvent } from '../core/realtime-features.js';

export const RECLASSIFY_WORKFLOW = 'reclassifyCustomer';

export function reclassifyWorkflowId(customerId: string): string {
  return `reclassify/${customerId}`;
}

/** One key event as the listener hands it over. */
export interface TriggerSignal {
  event: TriggerEvent;
  /** When Pub/Sub accepted the message (RFC 3339): latency is reported from here and from the event time. */
  publishTime: string;
}

export const triggerEventSignal = defineSignal<[TriggerSignal]>('triggerEvent');

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
