import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client } from '@temporalio/client';
import { createAssetActivities } from '../../activities/assets.js';
import type { DagTaskInput } from '../../core/dag-task.js';
import { taskActivityName } from '../../dags/dsl.js';
import { formatStale } from '../../schedules/asset-status.js';
import { dagRegistry } from '../../dags/index.js';
import {
  assetTrackerStateQuery,
  assetTrackerWorkflowId,
  staleFollowedSignal,
  type AssetTrackerState,
} from '../../workflows/asset-messages.js';
import { SCHEDULED_START_TIME_SEARCH_ATTRIBUTE, dagRunWorkflowId, type DagRunResult } from '../../workflows/dag-messages.js';
import { createDagTestKit, type DagTestKit, type StartRun } from './support/dag-test-kit.js';

const HOURLY = 'hourly_pipeline';
const NIGHTLY = 'nightly_segmentation';
const HOUR_MS = 3_600_000;

/** Every task activity of the production DAGs succeeds at once; each call is recorded with its DAG and interval. */
function productionStubs() {
  const calls: DagTaskInput[] = [];
  const stubs: Record<string, (input: DagTaskInput) => Promise<void>> = {};
  for (const dag of dagRegistry.values()) {
    for (const task of dag.tasks) {
      stubs[taskActivityName(task)] = async (input) => {
        calls.push(input);
      };
    }
  }
  return {
    calls,
    /** Runs of `dagId` that started for the interval beginning at `start` (their first task ran). */
    runsStarted: (dagId: string, start: string) =>
      calls.filter((c) => c.dagId === dagId && c.taskId === 'extract' && Date.parse(c.interval.start) === Date.parse(start)).length,
    activities: {
      ...stubs,
      raiseAlert: async () => ({ dedupKey: 'none', deliveries: [] }),
      // The real activity: signalWithStart through the worker's own client.
      ...createAssetActivities(),
    },
  };
}

function hoursOf(day: string): { start: string; end: string }[] {
  const t0 = Date.parse(day);
  return Array.from({ length: 24 }, (_, h) => ({
    start: new Date(t0 + h * HOUR_MS).toISOString(),
    end: new Date(t0 + (h + 1) * HOUR_MS).toISOString(),
  }));
}

/** A fixed shuffle, so the hours of a day land out of order as a backfill's parallel runs do. */
function outOfOrder<T>(items: readonly T[]): T[] {
  return items
    .map((item, i) => ({ item, key: (i * 7 + 5) % items.length }))
    .sort((a, b) => a.key - b.key)
    .map((x) => x.item);
}

/**
 * Results are awaited through a plain client: the time-skipping client unlocks time while it
 * waits, and with nothing else pending the server skips to the trackers' run timeout (10 years).
 */
let plain: Client;

async function result(workflowId: string): Promise<DagRunResult> {
  return (await plain.workflow.getHandle(workflowId).result()) as DagRunResult;
}

async function runHours(start: StartRun, hours: readonly { start: string; end: string }[], suffix = ''): Promise<void> {
  const handles = await Promise.all(
    hours.map((interval) => start({ dagId: HOURLY, interval }, `${dagRunWorkflowId(HOURLY, interval.start)}${suffix}`)),
  );
  for (const handle of handles) await result(handle.workflowId);
}

/** The tracker's state once `ready` holds for it (it handles each signal in its own workflow task). */
async function trackerState(kit: DagTestKit, workflowId: string, ready: (s: AssetTrackerState) => boolean): Promise<AssetTrackerState> {
  const handle = kit.env.client.workflow.getHandle(workflowId);
  for (let i = 0; ; i++) {
    const state = await handle.query(assetTrackerStateQuery);
    if (ready(state) || i === 600) return state;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('runs triggered by data', () => {
  let kit: DagTestKit;
  before(async () => {
    kit = await createDagTestKit();
    plain = new Client({ connection: kit.env.connection, namespace: kit.env.namespace ?? 'default' });
  });
  after(async () => {
    await kit?.teardown();
  });

  test('the day’s 24 hourly intervals, in any order, start one nightly_segmentation run; a rerun marks it stale and starts none', async () => {
    const day = '2026-11-20T00:00:00Z';
    const hours = hoursOf(day);
    const fake = productionStubs();
    const tracker = assetTrackerWorkflowId('', NIGHTLY, day);
    const nightlyId = dagRunWorkflowId(NIGHTLY, day);
    await kit.withWorker(fake.activities, async (start) => {
      const [last, ...first23] = outOfOrder(hours);
      await runHours(start, first23);
      const waiting = await trackerState(kit, tracker, (s) => s.assets[0]?.landed === 23);
      assert.equal(waiting.triggered, undefined, '23 of 24 hours do not trigger the run');
      assert.deepEqual(waiting.assets, [
        { asset: 'marts.customer_features', landed: 23, needed: 24, missing: [last?.start.replace('.000', '')] },
      ]);
      assert.equal(fake.runsStarted(NIGHTLY, day), 0);

      await runHours(start, [last as { start: string; end: string }]);
      const triggered = await trackerState(kit, tracker, (s) => s.triggered !== undefined);
      assert.equal(triggered.triggered?.by, 'data');
      assert.equal(triggered.triggered?.workflowId, nightlyId);
      assert.deepEqual(triggered.stale, []);
      const nightly = await result(nightlyId);
      assert.deepEqual(nightly.interval, { start: day, end: '2026-11-21T00:00:00Z' }, 'the run covers its own day');
      assert.ok(nightly.tasks.every((t) => t.state === 'succeeded'));

      // A late rerun of one hour (as `ops trigger --interval` runs it, under another run of the same id or another id).
      const rerun = hours[5] as { start: string; end: string };
      await runHours(start, [rerun], '#rerun');
      const stale = await trackerState(kit, tracker, (s) => s.stale.length > 0);
      assert.equal(stale.stale.length, 1);
      assert.equal(stale.stale[0]?.partition, rerun.start.replace('.000', ''));
      assert.equal(stale.stale[0]?.producerWorkflowId, `${dagRunWorkflowId(HOURLY, rerun.start)}#rerun`);
      const memo = (await kit.env.client.workflow.getHandle(tracker).describe()).memo?.assets as AssetTrackerState | undefined;
      assert.equal(memo?.stale.length, 1, 'ops status reads the stale partitions from the memo');
      const lines = formatStale([{ dagId: NIGHTLY, interval: memo.interval, trackerWorkflowId: tracker, partitions: memo.stale }]).join(
        '\n',
      );
      assert.match(lines, /stale +1 interval\(s\); follow with `npm run ops -- rerun-stale nightly_segmentation`/);
      assert.match(
        lines,
        new RegExp(
          `2026-11-20T00:00:00Z \\.\\. 2026-11-21T00:00:00Z: marts.customer_features ${rerun.start.replace('.000', '')} landed again`,
        ),
      );
      assert.equal(fake.runsStarted(NIGHTLY, day), 1, 'exactly one nightly run for the day, rerun or not');

      // `ops rerun-stale` starts the rerun, then tells the tracker.
      await kit.env.client.workflow.getHandle(tracker).signal(staleFollowedSignal, { workflowId: nightlyId, runId: 'r2' });
      const followed = await trackerState(kit, tracker, (s) => s.stale.length === 0);
      assert.deepEqual(followed.stale, []);
      assert.equal(followed.rerun?.runId, 'r2');
    });
  });

  test('when the interval already has its run (its schedule came first), the data starts no second one', async () => {
    const day = '2026-11-22T00:00:00Z';
    const fake = productionStubs();
    const tracker = assetTrackerWorkflowId('', NIGHTLY, day);
    await kit.withWorker(fake.activities, async (start) => {
      const scheduled = await start(
        { dagId: NIGHTLY, interval: { start: day, end: '2026-11-23T00:00:00Z' } },
        dagRunWorkflowId(NIGHTLY, day),
      );
      await result(scheduled.workflowId);
      await runHours(start, outOfOrder(hoursOf(day)));
      const state = await trackerState(kit, tracker, (s) => s.triggered !== undefined);
      assert.equal(state.triggered?.by, 'existing');
      assert.equal(fake.runsStarted(NIGHTLY, day), 1);
    });
  });

  test('the schedule beside the data does not run a day that its data already ran', async () => {
    const day = '2026-11-24T00:00:00Z';
    const fake = productionStubs();
    await kit.withWorker(fake.activities, async (start, taskQueue) => {
      await runHours(start, hoursOf(day));
      const tracker = assetTrackerWorkflowId('', NIGHTLY, day);
      const state = await trackerState(kit, tracker, (s) => s.triggered !== undefined);
      assert.equal(state.triggered?.by, 'data');
      await result(dagRunWorkflowId(NIGHTLY, day));

      // The 02:00 launcher of the next morning, as a schedule starts it (its nominal time as a search attribute).
      const launcher = await kit.env.client.workflow.start('scheduledDagRun', {
        taskQueue,
        workflowId: `schedule/${NIGHTLY}-2026-11-25T02:00:00Z`,
        args: [{ dagId: NIGHTLY }],
        typedSearchAttributes: [{ key: SCHEDULED_START_TIME_SEARCH_ATTRIBUTE, value: new Date('2026-11-25T02:00:00Z') }],
      });
      const launched = await result(launcher.workflowId);
      assert.deepEqual(launched.interval, { start: day, end: '2026-11-25T00:00:00Z' });
      assert.deepEqual(launched.tasks, [], 'the launcher found the day run and ran nothing');
      assert.equal(fake.runsStarted(NIGHTLY, day), 1);
    });
  });
});
