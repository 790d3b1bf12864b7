/**
 * replayQuarantine: brings quarantined messages that the contract in force accepts back into the
 * lake, then reruns the hourly intervals they arrived in so the warehouse, the features and the
 * profiles catch up. First a read-only plan over every object: with nothing to recover the replay
 * says so and changes nothing. Then one activity per object (retried on another worker if this one
 * dies; each object's writes are derived from its content, so a retry writes the same objects).
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ParentClosePolicy, executeChild, log, proxyActivities, setHandler } from '@temporalio/workflow';
import type { QuarantineActivities, ReplayObjectResult } from '../activities/quarantine.js';
import {
  DAG_ID_SEARCH_ATTRIBUTE,
  LOGICAL_DATE_SEARCH_ATTRIBUTE,
  dagRunWorkflowId,
  dataIntervalEndingAt,
  type RunDagInput,
} from './dag-messages.js';
import { replayProgressQuery, type ReplayProgress, type ReplayQuarantineInput } from './quarantine-messages.js';
import { RECLASSIFY_WORKFLOW, reclassifyWorkflowId, triggerEventsSignal } from './reclassify-messages.js';
import type { runDag } from './run-dag.js';
import { INTERVAL_PERIOD_MS } from '../dags/dsl.js';

const HOURLY_DAG = 'hourly_pipeline';
/** Objects replayed at once. */
const OBJECTS_IN_FLIGHT = 4;

const { listQuarantineObjects } = proxyActivities<QuarantineActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 },
});

const { replayQuarantineObject } = proxyActivities<QuarantineActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 20 },
});

export async function replayQuarantine(input: ReplayQuarantineInput): Promise<ReplayProgress> {
  const progress: ReplayProgress = {
    phase: 'listing',
    objects: 0,
    objectsDone: 0,
    examined: 0,
    recovered: 0,
    stillInvalid: 0,
    reasonsChanged: 0,
    suppressed: 0,
    triggers: 0,
    hours: [],
    reruns: [],
    reasons: {},
  };
  setHandler(replayProgressQuery, () => progress);

  const objects = await listQuarantineObjects({ from: input.from, to: input.to });
  progress.objects = objects.length;
  const reason = input.reason === undefined ? {} : { reason: input.reason };
  const replay = `${input.idPrefix ?? ''}quarantine-replay/${input.from}..${input.to}`;

  progress.phase = 'planning';
  const plans = await inBatches(objects, (o) => replayQuarantineObject({ object: o.name, replay, ...reason, dryRun: true }));
  const recoverable = plans.filter((p) => p.recovered > 0 || p.reasonsChanged > 0);
  if (recoverable.every((p) => p.recovered === 0)) {
    for (const p of plans) tally(progress, p);
    progress.objectsDone = objects.length;
    progress.nothingToRecover = true;
    progress.phase = 'done';
    log.info('quarantine replay: nothing to recover', { from: input.from, to: input.to, examined: progress.examined });
    return progress;
  }

  progress.phase = 'replaying';
  const realtime = {
    workflowType: RECLASSIFY_WORKFLOW,
    signal: triggerEventsSignal.name,
    workflowIdPrefix: reclassifyWorkflowId('', input.idPrefix),
    idleMinutes: input.idleMinutes,
  };
  // Objects the plan found nothing to change in are counted from the plan, not written.
  for (const p of plans.filter((p) => !recoverable.includes(p))) {
    tally(progress, p);
    progress.objectsDone += 1;
  }
  await inBatches(recoverable, async (p) => {
    const r = await replayQuarantineObject({ object: p.object, replay, ...reason, realtime });
    tally(progress, r);
    progress.objectsDone += 1;
    return r;
  });

  if (input.rerunHours ?? true) {
    progress.phase = 'rerunning';
    for (const hour of progress.hours) {
      const interval = dataIntervalEndingAt('hourly', Date.parse(hour) + INTERVAL_PERIOD_MS.hourly);
      const workflowId = `${input.idPrefix ?? ''}${dagRunWorkflowId(HOURLY_DAG, interval.start)}`;
      const runInput: RunDagInput = {
        dagId: HOURLY_DAG,
        interval,
        ...(input.uiBaseUrl === undefined ? {} : { uiBaseUrl: input.uiBaseUrl }),
      };
      try {
        await executeChild<typeof runDag>('runDag', {
          workflowId,
          args: [runInput],
          typedSearchAttributes: [
            { key: DAG_ID_SEARCH_ATTRIBUTE, value: HOURLY_DAG },
            { key: LOGICAL_DATE_SEARCH_ATTRIBUTE, value: new Date(interval.start) },
          ],
          staticSummary: `${HOURLY_DAG} ${interval.start} .. ${interval.end} (rerun after a quarantine replay)`,
          parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        });
        progress.reruns.push({ workflowId, status: 'completed' });
      } catch (err) {
        const running = err instanceof WorkflowExecutionAlreadyStartedError;
        progress.reruns.push({ workflowId, status: running ? 'running elsewhere' : 'failed' });
        log.warn('hourly rerun after a quarantine replay did not complete', { workflowId, error: String(err) });
      }
    }
  }
  progress.phase = 'done';
  log.info('quarantine replay done', { recovered: progress.recovered, stillInvalid: progress.stillInvalid, hours: progress.hours });
  return progress;
}

function tally(p: ReplayProgress, r: ReplayObjectResult): void {
  p.examined += r.examined;
  p.recovered += r.recovered;
  p.stillInvalid += r.stillInvalid;
  p.reasonsChanged += r.reasonsChanged;
  p.suppressed += r.suppressed;
  p.triggers += r.triggers;
  for (const [code, n] of Object.entries(r.reasons)) p.reasons[code] = (p.reasons[code] ?? 0) + n;
  p.hours = [...new Set([...p.hours, ...r.hours])].sort();
}

async function inBatches<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += OBJECTS_IN_FLIGHT) out.push(...(await Promise.all(items.slice(i, i + OBJECTS_IN_FLIGHT).map(fn))));
  return out;
}
