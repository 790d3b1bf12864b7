/**
 * Stale intervals of data-triggered DAGs, read from their asset trackers' memos (visibility), for
 * `ops status` and `ops rerun-stale`. A tracker is `assets/<dag>/<interval start>`
 * (workflows/asset-tracker.ts); it is stale when a partition it needs landed again after its run started.
 */
import type { Client } from '@temporalio/client';
import type { DataInterval } from '../core/dag-task.js';
import {
  ASSET_TRACKER_MEMO_KEY,
  ASSET_TRACKER_WORKFLOW,
  type AssetTrackerState,
  type StalePartition,
} from '../workflows/asset-messages.js';
import { DAG_ID_SEARCH_ATTRIBUTE } from '../workflows/dag-messages.js';

export interface StaleInterval {
  readonly dagId: string;
  readonly interval: DataInterval;
  /** The tracker, to signal once a rerun follows the new data. */
  readonly trackerWorkflowId: string;
  /** The run that read the older data. */
  readonly runWorkflowId?: string;
  readonly partitions: readonly StalePartition[];
}

function quote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Intervals of `dagId` whose run read data that has since landed again, oldest first. */
export async function staleIntervals(client: Client, prefix: string, dagId: string): Promise<StaleInterval[]> {
  const query = [
    `WorkflowType = ${quote(ASSET_TRACKER_WORKFLOW)}`,
    `${DAG_ID_SEARCH_ATTRIBUTE.name} = ${quote(dagId)}`,
    `ExecutionStatus = 'Running'`,
    ...(prefix === '' ? [] : [`WorkflowId STARTS_WITH ${quote(`${prefix}assets/${dagId}/`)}`]),
  ].join(' AND ');
  const stale: StaleInterval[] = [];
  for await (const info of client.workflow.list({ query, pageSize: 200 })) {
    const state = info.memo?.[ASSET_TRACKER_MEMO_KEY] as AssetTrackerState | undefined;
    if (state === undefined || state.stale.length === 0) continue;
    stale.push({
      dagId,
      interval: state.interval,
      trackerWorkflowId: info.workflowId,
      ...(state.triggered === undefined ? {} : { runWorkflowId: state.triggered.workflowId }),
      partitions: state.stale,
    });
  }
  return stale.sort((a, b) => Date.parse(a.interval.start) - Date.parse(b.interval.start));
}

/** `ops status` lines for a DAG's stale intervals. */
export function formatStale(stale: readonly StaleInterval[], indent = 2): string[] {
  const pad = ' '.repeat(indent);
  if (stale.length === 0) return [];
  return [
    `${pad}stale      ${stale.length} interval(s); follow with \`npm run ops -- rerun-stale ${stale[0]?.dagId}\``,
    ...stale.map(
      (s) =>
        `${pad}  ${s.interval.start} .. ${s.interval.end}: ${s.partitions
          .map((p) => `${p.asset} ${p.partition} landed again ${p.landedAt}`)
          .join('; ')}${s.runWorkflowId === undefined ? '' : ` (after ${s.runWorkflowId})`}`,
    ),
  ];
}
