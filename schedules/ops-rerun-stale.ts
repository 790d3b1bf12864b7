/**
 * `ops rerun-stale <dag> [--interval]`: run each stale interval of a data-triggered DAG again in
 * full (its input landed again after its run started), then tell its tracker, which clears the mark.
 */
import type { Command } from 'commander';
import { staleFollowedSignal } from '../workflows/asset-messages.js';
import { formatStale, staleIntervals, type StaleInterval } from './asset-status.js';
import { OpsError, parseInstantOption, requireDag, startDagRun, type OpsContext, type StartedRun } from './ops-lib.js';
import { toJson } from './ops-format.js';

export interface StaleRerun extends StartedRun {
  readonly stale: StaleInterval;
}

export async function rerunStale(ctx: OpsContext, dagId: string, opts: { interval?: string } = {}): Promise<StaleRerun[]> {
  const dag = requireDag(dagId);
  if (dag.triggeredBy === undefined)
    throw new OpsError(`${dagId} is not triggered by data (no triggeredBy in its definition); nothing can be stale.`);
  const only = opts.interval === undefined ? undefined : parseInstantOption(opts.interval, '--interval');
  const stale = (await staleIntervals(ctx.client, ctx.config.schedules.prefix, dagId)).filter(
    (s) => only === undefined || Date.parse(s.interval.start) === only,
  );
  const reruns: StaleRerun[] = [];
  for (const s of stale) {
    const started = await startDagRun(ctx, dagId, s.interval);
    await ctx.client.workflow.getHandle(s.trackerWorkflowId).signal(staleFollowedSignal, started);
    reruns.push({ ...started, stale: s });
  }
  return reruns;
}

export function formatStaleReruns(reruns: readonly StaleRerun[]): string {
  if (reruns.length === 0) return 'no stale intervals';
  return reruns.map((r) => [`started ${r.workflowId} (run ${r.runId}) for`, ...formatStale([r.stale], 2).slice(1)].join('\n')).join('\n');
}

export function addRerunStaleCommand(program: Command, getCtx: () => Promise<OpsContext>): void {
  program
    .command('rerun-stale')
    .description(
      'Run again, in full, each interval of a data-triggered DAG whose input landed again after its run started (shown as stale by `status`).',
    )
    .argument('<dag>', 'DAG id, e.g. nightly_segmentation')
    .option('--interval <start>', 'only the interval starting here, RFC 3339')
    .action(async (dag: string, o: { interval?: string; json?: boolean }) => {
      const reruns = await rerunStale(await getCtx(), dag, o.interval === undefined ? {} : { interval: o.interval });
      console.log(o.json ? toJson(reruns) : formatStaleReruns(reruns));
    });
}
