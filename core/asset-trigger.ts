/**
 * Data-triggered runs: the names and messages that the producer's activity (activities/assets.ts),
 * the tracker workflow (workflows/asset-tracker.ts), the ops CLI and tests share. Pure types.
 */
import type { DataInterval } from './dag-task.js';
import { formatInstant } from './time.js';

export const ASSET_TRACKER_WORKFLOW = 'assetTracker';
export const ASSET_LANDED_SIGNAL = 'assetLanded';

/** `<prefix>assets/<dependent dag>/<interval start>`: one tracker per dependent interval. */
export function assetTrackerWorkflowId(prefix: string, dagId: string, intervalStart: string): string {
  return `${prefix}assets/${dagId}/${formatInstant(Date.parse(intervalStart))}`;
}

export interface AssetTrackerInput {
  /** The dependent DAG and the interval of it this tracker waits for. */
  readonly dagId: string;
  readonly interval: DataInterval;
  /** Prefix of run workflow ids (SEGFLOW_SCHEDULE_PREFIX), so the run it starts is `<prefix><dag>/<start>`. */
  readonly runIdPrefix: string;
  /** Task queue of the DAG run it starts. */
  readonly taskQueue: string;
  readonly uiBaseUrl?: string;
  /** How long the tracker stays after the run started, to mark reruns of a partition stale. Default 7d. */
  readonly keepForMs?: number;
}

/** Sent (signalWithStart) by every successful producer run. */
export interface AssetLanded {
  readonly asset: string;
  /** Start of the producer run's data interval. */
  readonly partition: string;
  /** The producer run, e.g. `hourly_pipeline/2026-11-26T09:00:00Z`. */
  readonly producerWorkflowId: string;
  readonly producerRunId: string;
  readonly landedAt: string;
}

/** A partition that landed again after the dependent run started: that run read older data. */
export interface StalePartition {
  readonly asset: string;
  readonly partition: string;
  readonly producerWorkflowId: string;
  readonly landedAt: string;
}

export interface AssetTrackerState {
  readonly dagId: string;
  readonly interval: DataInterval;
  readonly assets: readonly {
    readonly asset: string;
    readonly landed: number;
    readonly needed: number;
    readonly missing: readonly string[];
  }[];
  /**
   * Set once the run was asked for: `data` when this tracker started it, `existing` when the run id
   * was already taken (its schedule, a manual trigger or an earlier tracker ran the interval).
   */
  readonly triggered?: { readonly workflowId: string; readonly at: string; readonly by: 'data' | 'existing' };
  /** Partitions that landed again after the run started; empty once followed by `ops rerun-stale`. */
  readonly stale: readonly StalePartition[];
  /** The rerun that last followed stale partitions. */
  readonly rerun?: { readonly workflowId: string; readonly runId: string; readonly at: string };
}

/** What the producer's activity needs to signalWithStart a tracker. */
export interface AnnounceAssetInput {
  readonly trackerWorkflowId: string;
  readonly tracker: AssetTrackerInput;
  readonly landed: AssetLanded;
}
