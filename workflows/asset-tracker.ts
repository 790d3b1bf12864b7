/**
 * assetTracker: one per interval of a data-triggered DAG (`assets/nightly_segmentation/<day>`),
 * started by the first producer run that lands a partition it needs (signalWithStart from
 * activities/assets.ts) and signalled by every later one. When the last needed partition lands, in
 * whatever order, it starts the dependent run `<dag>/<interval start>` with the REJECT_DUPLICATE id
 * policy, so Temporal's workflow-id uniqueness makes it happen once whoever else (the schedule, a
 * manual trigger) ran the interval first. It then stays for `keepForMs`, marking any partition that
 * lands again (a late rerun of a producer interval) stale: no second run starts on its own, the
 * operator follows it with `ops rerun-stale`.
 */
import {
  ApplicationFailure,
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  condition,
  log,
  setHandler,
  startChild,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { neededPartitions } from '../dags/assets.js';
import { dagRegistry } from '../dags/index.js';
import {
  ASSET_TRACKER_MEMO_KEY,
  assetLandedSignal,
  assetTrackerStateQuery,
  staleFollowedSignal,
  type AssetLanded,
  type AssetTrackerInput,
  type AssetTrackerState,
  type StalePartition,
} from './asset-messages.js';
import {
  DAG_ID_SEARCH_ATTRIBUTE,
  LOGICAL_DATE_SEARCH_ATTRIBUTE,
  dagRunWorkflowId,
  formatInstant,
  type RunDagInput,
} from './dag-messages.js';
import type { runDag } from './run-dag.js';

const DEFAULT_KEEP_FOR_MS = 7 * 86_400_000;

export async function assetTracker(input: AssetTrackerInput): Promise<AssetTrackerState> {
  const dag = dagRegistry.get(input.dagId);
  if (dag?.triggeredBy === undefined) {
    throw ApplicationFailure.nonRetryable(`DAG "${input.dagId}" is not registered or declares no triggeredBy.`, 'UnknownDag');
  }
  upsertSearchAttributes([
    { key: DAG_ID_SEARCH_ATTRIBUTE, value: dag.id },
    { key: LOGICAL_DATE_SEARCH_ATTRIBUTE, value: new Date(input.interval.start) },
  ]);
  const needed = neededPartitions(dagRegistry.values(), dag, input.interval);
  const landed = new Map<string, Set<string>>([...needed.keys()].map((asset) => [asset, new Set<string>()]));
  const stale = new Map<string, StalePartition>();
  let triggered: AssetTrackerState['triggered'];
  // Set before the start is asked for: a partition landing while it is under way is already late.
  let asked = false;
  let rerun: AssetTrackerState['rerun'];

  const state = (): AssetTrackerState => ({
    dagId: dag.id,
    interval: input.interval,
    assets: [...needed].map(([asset, partitions]) => {
      const have = landed.get(asset) as Set<string>;
      return { asset, landed: have.size, needed: partitions.length, missing: partitions.filter((p) => !have.has(p)) };
    }),
    ...(triggered === undefined ? {} : { triggered }),
    stale: [...stale.values()],
    ...(rerun === undefined ? {} : { rerun }),
  });
  const publish = (): void => upsertMemo({ [ASSET_TRACKER_MEMO_KEY]: state() });

  const onLanded = (signal: AssetLanded): void => {
    const partitions = needed.get(signal.asset);
    if (partitions === undefined || !partitions.includes(signal.partition)) {
      log.warn('asset partition outside this tracker; ignored', { dagId: dag.id, interval: input.interval, ...signal });
      return;
    }
    if (asked) {
      stale.set(`${signal.asset}@${signal.partition}`, {
        asset: signal.asset,
        partition: signal.partition,
        producerWorkflowId: signal.producerWorkflowId,
        landedAt: signal.landedAt,
      });
      log.warn('asset partition landed again after the dependent run started: interval stale', {
        dagId: dag.id,
        interval: input.interval,
        asset: signal.asset,
        partition: signal.partition,
      });
      publish();
      return;
    }
    landed.get(signal.asset)?.add(signal.partition);
  };
  setHandler(assetLandedSignal, onLanded);
  setHandler(staleFollowedSignal, (run) => {
    rerun = { ...run, at: formatInstant(Date.now()) };
    stale.clear();
    publish();
  });
  setHandler(assetTrackerStateQuery, state);

  const complete = (): boolean => [...needed].every(([asset, partitions]) => landed.get(asset)?.size === partitions.length);
  await condition(complete);

  asked = true;
  const workflowId = `${input.runIdPrefix}${dagRunWorkflowId(dag.id, input.interval.start)}`;
  const runInput: RunDagInput = {
    dagId: dag.id,
    interval: input.interval,
    ...(input.uiBaseUrl === undefined ? {} : { uiBaseUrl: input.uiBaseUrl }),
  };
  try {
    await startChild<typeof runDag>('runDag', {
      workflowId,
      args: [runInput],
      taskQueue: input.taskQueue,
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      // The run is the DAG's own: it outlives this tracker and is not cancelled with it.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      typedSearchAttributes: [
        { key: DAG_ID_SEARCH_ATTRIBUTE, value: dag.id },
        { key: LOGICAL_DATE_SEARCH_ATTRIBUTE, value: new Date(input.interval.start) },
      ],
      staticSummary: `${dag.id} ${input.interval.start} .. ${input.interval.end} (its data landed)`,
    });
    triggered = { workflowId, at: formatInstant(Date.now()), by: 'data' };
    log.info('every needed partition landed: DAG run started', { dagId: dag.id, interval: input.interval, workflowId });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    triggered = { workflowId, at: formatInstant(Date.now()), by: 'existing' };
    log.info('every needed partition landed; the interval already has its run', { dagId: dag.id, interval: input.interval, workflowId });
  }
  publish();

  // Stays to mark reruns of a partition stale; a later producer run after this starts a new tracker,
  // which cannot start a second run (the id is taken) and says `existing` once the partitions are in.
  await condition(() => false, input.keepForMs ?? DEFAULT_KEEP_FOR_MS);
  return state();
}
