/**
 * The signals, query and memo key of the assetTracker workflow (workflows/asset-tracker.ts); the
 * message types are in core/asset-trigger.ts, which the producer's activity shares.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { ASSET_LANDED_SIGNAL, type AssetLanded, type AssetTrackerState } from '../core/asset-trigger.js';

export * from '../core/asset-trigger.js';

/** Memo key under which a tracker keeps its AssetTrackerState, for `ops status`. */
export const ASSET_TRACKER_MEMO_KEY = 'assets';

/** Sent (signalWithStart) by every successful producer run. */
export const assetLandedSignal = defineSignal<[AssetLanded]>(ASSET_LANDED_SIGNAL);
/** Sent by `ops rerun-stale` once it has started the rerun: the stale partitions are followed. */
export const staleFollowedSignal = defineSignal<[{ workflowId: string; runId: string }]>('staleFollowed');
export const assetTrackerStateQuery = defineQuery<AssetTrackerState>('assetTrackerState');
