/**
 * The producer side of data-triggered runs: a successful run of a DAG that `produces` assets tells
 * the tracker of every dependent interval it counts towards (activities/assets.ts signalWithStarts
 * `assets/<dag>/<interval start>`). Called by runDag once its tasks succeeded.
 */
import { log, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { DataInterval } from '../core/dag-task.js';
import { assetTargets } from '../dags/assets.js';
import type { DagDefinition } from '../dags/dsl.js';
import { dagRegistry } from '../dags/index.js';
import type { createAssetActivities } from '../activities/assets.js';
import { assetTrackerWorkflowId, type AnnounceAssetInput } from './asset-messages.js';
import { dagRunWorkflowId, formatInstant } from './dag-messages.js';

const { announceAssetLanded } = proxyActivities<ReturnType<typeof createAssetActivities>>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '5s', maximumInterval: '5m', maximumAttempts: 20 },
});

/** Announces the run's partitions; a tracker that cannot be told is logged, never fails the run. */
export async function announceProducedAssets(dag: DagDefinition, interval: DataInterval, uiBaseUrl: string | undefined): Promise<void> {
  const targets = assetTargets(dagRegistry.values(), dag, interval);
  // Runs that succeeded before this code existed replay (a query of a closed run) without the step.
  if (targets.length === 0 || !patched('announce-produced-assets')) return;
  const info = workflowInfo();
  // The run id is `<prefix><dag>/<start>` (the prefix of a test or staging deployment): dependents keep it.
  const at = info.workflowId.indexOf(dagRunWorkflowId(dag.id, interval.start));
  const runIdPrefix = at > 0 ? info.workflowId.slice(0, at) : '';
  const announcements: AnnounceAssetInput[] = targets.flatMap((target) =>
    target.assets.map((asset) => ({
      trackerWorkflowId: assetTrackerWorkflowId(runIdPrefix, target.dagId, target.interval.start),
      tracker: {
        dagId: target.dagId,
        interval: target.interval,
        runIdPrefix,
        taskQueue: info.taskQueue,
        ...(uiBaseUrl === undefined ? {} : { uiBaseUrl }),
      },
      landed: {
        asset,
        partition: interval.start,
        producerWorkflowId: info.workflowId,
        producerRunId: info.runId,
        landedAt: formatInstant(Date.now()),
      },
    })),
  );
  await Promise.all(
    announcements.map(async (a) => {
      try {
        await announceAssetLanded(a);
      } catch (err) {
        log.error('Could not tell a data-triggered DAG that its asset landed; its schedule (if beside) still runs it', {
          trackerWorkflowId: a.trackerWorkflowId,
          asset: a.landed.asset,
          partition: a.landed.partition,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }),
  );
}
