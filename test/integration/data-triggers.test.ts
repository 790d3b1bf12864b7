/**
 * Runs triggered by data on the real dev server, through the ops operations and the CLI: a day's
 * 24 hourly_pipeline runs (tasks stubbed, the asset announcement real) start one
 * nightly_segmentation run; a rerun of one hour shows the day stale in `ops status --json` and
 * starts nothing; `rerun-stale` reruns the day and clears it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { PROJECT_ROOT, type Config } from '../../core/config.js';
import { formatInstant } from '../../core/time.js';
import { dagStatuses, listRuns, startDagRun, trigger, type DagStatus, type OpsContext } from '../../schedules/ops-lib.js';
import { rerunStale } from '../../schedules/ops-rerun-stale.js';
import { assetTrackerStateQuery, assetTrackerWorkflowId, type AssetTrackerState } from '../../workflows/asset-messages.js';
import { isolatedConfig, startStubDagWorker, type StubDagWorker } from '../support/dag-worker.js';

const run = promisify(execFile);
const HOURLY = 'hourly_pipeline';
const NIGHTLY = 'nightly_segmentation';
const HOUR_MS = 3_600_000;

let config: Config;
let worker: StubDagWorker;
let ctx: OpsContext;

// A random day in 2002, so runs never collide with anyone else's interval.
const day = Date.UTC(2002, 0, 1) + Math.floor(Math.random() * 300) * 24 * HOUR_MS;
const dayStart = formatInstant(day);

/** Polls `read` until `ready` holds (visibility and signals are asynchronous), at most 30 s. */
async function eventually<T>(read: () => Promise<T>, ready: (value: T) => boolean): Promise<T> {
  for (let i = 0; ; i++) {
    const value = await read();
    if (ready(value) || i === 150) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function result(workflowId: string): Promise<void> {
  await worker.client.workflow.getHandle(workflowId).result();
}

before(async () => {
  config = isolatedConfig('datatrig');
  worker = await startStubDagWorker(config);
  ctx = { client: worker.client, config };
});

after(async () => {
  await worker?.close();
});

test('a day of hourly runs starts one nightly run; a rerun hour marks it stale; rerun-stale follows it', async () => {
  const hours = Array.from({ length: 24 }, (_, h) => (h * 7 + 5) % 24).map((h) => ({
    start: formatInstant(day + h * HOUR_MS),
    end: formatInstant(day + (h + 1) * HOUR_MS),
  }));
  const started = await Promise.all(hours.map((interval) => startDagRun(ctx, HOURLY, interval)));
  for (const s of started) await result(s.workflowId);

  const tracker = worker.client.workflow.getHandle(assetTrackerWorkflowId(config.schedules.prefix, NIGHTLY, dayStart));
  const state: AssetTrackerState = await eventually(
    () => tracker.query(assetTrackerStateQuery),
    (s) => s.triggered !== undefined,
  );
  assert.equal(state.triggered?.by, 'data');
  const nightlyId = `${config.schedules.prefix}${NIGHTLY}/${dayStart}`;
  assert.equal(state.triggered?.workflowId, nightlyId);
  await result(nightlyId);
  assert.equal((await listRuns(ctx, NIGHTLY)).length, 1, 'one nightly run for the day');

  const rerunHour = formatInstant(day + 5 * HOUR_MS);
  await result((await trigger(ctx, HOURLY, { interval: rerunHour })).workflowId);
  const statuses: DagStatus[] = await eventually(
    () => dagStatuses(ctx, { dagIds: [NIGHTLY] }),
    (s) => (s[0]?.stale?.length ?? 0) > 0,
  );
  assert.deepEqual(
    statuses[0]?.stale?.map((s) => ({ interval: s.interval.start, partitions: s.partitions.map((p) => p.partition) })),
    [{ interval: dayStart, partitions: [rerunHour] }],
  );
  assert.equal((await listRuns(ctx, NIGHTLY)).length, 1, 'the rerun hour starts no second nightly run on its own');

  const env = {
    ...process.env,
    SEGFLOW_SCHEDULE_PREFIX: config.schedules.prefix,
    TEMPORAL_TASK_QUEUE: config.temporal.taskQueue,
    LOG_LEVEL: 'error',
  };
  const cli = (args: string[]) => run(process.execPath, ['--import', 'tsx', 'schedules/ops.ts', ...args], { cwd: PROJECT_ROOT, env });
  const json = JSON.parse((await cli(['status', NIGHTLY, '--json'])).stdout) as DagStatus[];
  assert.equal(json[0]?.stale?.[0]?.partitions[0]?.partition, rerunHour);
  assert.match(
    (await cli(['status', NIGHTLY])).stdout,
    /stale +1 interval\(s\); follow with `npm run ops -- rerun-stale nightly_segmentation`/,
  );

  const reruns = await rerunStale(ctx, NIGHTLY);
  assert.equal(reruns.length, 1);
  assert.equal(reruns[0]?.workflowId, nightlyId);
  await result(nightlyId);
  const after = await eventually(
    () => dagStatuses(ctx, { dagIds: [NIGHTLY] }),
    (s) => s[0]?.stale?.length === 0,
  );
  assert.deepEqual(after[0]?.stale, []);
  assert.equal((await listRuns(ctx, NIGHTLY)).length, 2, 'the day ran again once, by rerun-stale');
});
