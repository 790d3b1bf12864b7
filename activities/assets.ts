/**
 * announceAssetLanded: signalWithStart of the asset tracker of one dependent DAG interval
 * (workflows/asset-tracker.ts). Atomic on the server: the first producer run of a day starts the
 * tracker, every later one signals it, in any order and however many run at once.
 */
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ASSET_LANDED_SIGNAL, ASSET_TRACKER_WORKFLOW, type AnnounceAssetInput } from '../core/asset-trigger.js';

export interface AssetDeps {
  /** The Temporal client; the activity's own (the worker's connection) when absent. */
  temporal?: () => Client;
}

export function createAssetActivities(deps: AssetDeps = {}) {
  const temporal = deps.temporal ?? (() => Context.current().client);
  return {
    async announceAssetLanded(input: AnnounceAssetInput): Promise<{ workflowId: string; runId: string }> {
      const handle = await temporal().workflow.signalWithStart(ASSET_TRACKER_WORKFLOW, {
        workflowId: input.trackerWorkflowId,
        taskQueue: input.tracker.taskQueue,
        args: [input.tracker],
        signal: ASSET_LANDED_SIGNAL,
        signalArgs: [input.landed],
        staticSummary: `waits for the data of ${input.tracker.dagId} ${input.tracker.interval.start} .. ${input.tracker.interval.end}`,
      });
      return { workflowId: handle.workflowId, runId: handle.signaledRunId };
    },
  };
}
