/**
 * The ops CLI against the real dev server, with a worker whose DAG tasks are trivial:
 * backfill (through the schedule backfill API), status, pause/resume, trigger, runs, tasks and
 * rerun-failed.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { PROJECT_ROOT, type Config } from '../../core/config.js';
import { formatInstant } from '../../core/time.js';
import type { DagTaskInput } from '../../dags/dsl.js';
import { dagRegistry } from '../../dags/index.js';
import { applySchedules } from '../../schedules/apply.js';
import { scheduleDefinitions, type DagScheduleDefinition } from '../../schedules/definitions.js';
import { listRuns, planBackfill, rerunFailed, taskStates, trigger, type OpsContext } from '../../schedules/ops.js';
import { dagRunFailureDetails, type DagRunResult } from '../../workflows/dag-messages.js';
import { isolatedConfig, startStubDagWorker, type StubDagWorker } from '../support/dag-worker.js';

const run = promisify(execFile);

// hourly_pipeline when this build registers it (its tasks are stubbed), else an example DAG.
const DAG = dagRegistry.has('hourly_pipeline') ? 'hourly_pipeline' : 'example_diamond';
const FAILING_DAG = 'example_diamond';

let config: Config;
let worker: StubDagWorker;
let ctx: OpsContext;
let hourly: DagScheduleDefinition;
let output: string[] = [];
let failTask: string | undefined;

// A random whole hour in 2001, so runs never collide with anyone else's interval.
const base = Date.UTC(2001, 0, 1) + Math.floor(Math.random() * 300 * 24) * 3_600_000;
const iso = formatInstant;

function cli(args: string[]) {
  return run(process.execPath, ['--import', 'tsx', 'schedules/ops.ts', ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, SEGFLOW_SCHEDULE_PREFIX: config.schedules.prefix, TEMPORAL_TASK_QUEUE: config.temporal.taskQueue, LOG_LEVEL: 'error' },
  });
}

before(async () => {
  config = isolatedConfig('ops');
  worker = await startStubDagWorker(config, {
    async exampleTask(input: DagTaskInput) {
      if (input.taskId === failTask) throw new Error(`${input.taskId}: injected failure`);
      return { taskId: input.taskId };
    },
  });
  ctx = { client: worker.client, config, out: (line) => output.push(line) };
  hourly = scheduleDefinitions(config, { dagIds: { hourly: DAG } })[0]!;
  await applySchedules(worker.client, [hourly], { prefix: config.schedules.prefix });
});

after(async () => {
  await worker?.client.schedule.getHandle(hourly.scheduleId).delete().catch(() => undefined);
  await worker?.close();
});

test('backfill refuses reversed, unbounded, misaligned and absurdly large ranges', () => {
  assert.throws(() => planBackfill(ctx, DAG, iso(base + 3_600_000), iso(base)), /reversed/);
  assert.throws(() => planBackfill(ctx, DAG, iso(base), undefined), /unbounded/);
  assert.throws(() => planBackfill(ctx, DAG, iso(base + 60_000), iso(base + 3_600_000)), /whole hours/);
  assert.throws(() => planBackfill(ctx, DAG, '2001-01-01T00:00:00', iso(base)), /offset/);
  assert.throws(() => planBackfill(ctx, DAG, iso(base), iso(base + 1_000 * 3_600_000)), /--yes/);
  assert.equal(planBackfill(ctx, DAG, iso(base), iso(base + 1_000 * 3_600_000), { yes: true }).intervals.length, 1_000);
  const nextHour = Date.now() - (Date.now() % 3_600_000) + 3_600_000;
  assert.throws(() => planBackfill(ctx, DAG, iso(base), iso(nextHour)), /future/);
});

test('`ops backfill` over three hours starts exactly three runs with the right intervals; `ops status` shows them', async () => {
  const from = iso(base);
  const to = iso(base + 3 * 3_600_000);
  const { stdout } = await cli(['backfill', DAG, '--from', from, '--to', to, '--timeout', '3']);
  assert.match(stdout, /started 3\/3, running 0, completed 3, failed 0/);

  const runs = await listRuns(ctx, DAG, { extra: [`LogicalDate >= '${from}'`, `LogicalDate < '${to}'`] });
  assert.equal(runs.length, 3, 'exactly three runs');
  const intervals = runs.map((r) => r.interval).sort((a, b) => (a?.start ?? '').localeCompare(b?.start ?? ''));
  assert.deepEqual(intervals, [0, 1, 2].map((i) => ({ start: iso(base + i * 3_600_000), end: iso(base + (i + 1) * 3_600_000) })));
  for (const r of runs) {
    assert.equal(r.status, 'COMPLETED');
    assert.equal(r.workflowId, `${config.schedules.prefix}${DAG}/${r.interval?.start}`);
  }
  // Each run really processed its own interval.
  for (const r of runs) {
    const result = await worker.client.workflow.getHandle(r.workflowId).result();
    assert.deepEqual(result.interval, r.interval);
  }

  const status = await cli(['status', DAG]);
  for (const i of intervals) assert.match(status.stdout, new RegExp(`${i?.start} \\.\\. ${i?.end}\\s+completed`));
  assert.match(status.stdout, /active/);
  assert.match(status.stdout, /next run\s+\d{4}-/);
});

test('pause and resume with a note show in status', async () => {
  await cli(['pause', DAG, '--note', 'warehouse migration INC-42']);
  assert.match((await cli(['status', DAG])).stdout, /PAUSED \(note: paused via ops CLI: warehouse migration INC-42\)/);
  await cli(['resume', DAG, '--note', 'done']);
  assert.match((await cli(['status', DAG])).stdout, /state\s+active/);
});

test('trigger, tasks and rerun-failed: a failed interval reruns only what it must', async () => {
  const start = iso(base + 10 * 3_600_000);
  failTask = 'transform_a';
  const first = await trigger(ctx, FAILING_DAG, { interval: start });
  assert.equal(first.workflowId, `${config.schedules.prefix}${FAILING_DAG}/${start}`);
  const failure = await worker.client.workflow.getHandle(first.workflowId).result().then(
    () => undefined,
    (err: unknown) => dagRunFailureDetails(err),
  );
  assert.deepEqual(failure?.failedTasks, ['transform_a']);

  const tasks = await taskStates(ctx, first.workflowId);
  assert.equal(tasks.status, 'FAILED');
  assert.deepEqual(tasks.tasks.map((t) => [t.taskId, t.state]), [
    ['extract', 'succeeded'],
    ['transform_a', 'failed'],
    ['transform_b', 'succeeded'],
    ['load', 'upstream_failed'],
  ]);
  const tasksCli = await cli(['tasks', first.workflowId]);
  assert.match(tasksCli.stdout, /transform_a\s+failed\s+2/);

  failTask = undefined;
  output = [];
  const rerun = await rerunFailed(ctx, FAILING_DAG, start);
  assert.deepEqual(rerun.skipTasks, ['extract', 'transform_b']);
  const result = (await worker.client.workflow.getHandle(rerun.workflowId).result()) as DagRunResult;
  assert.equal(result.rerunOf, first.runId);
  assert.deepEqual(result.tasks.map((t) => [t.taskId, t.state]), [
    ['extract', 'skipped'],
    ['transform_a', 'succeeded'],
    ['transform_b', 'skipped'],
    ['load', 'succeeded'],
  ]);
  await assert.rejects(rerunFailed(ctx, FAILING_DAG, start), /succeeded; nothing to rerun/);

  const runs = await cli(['runs', FAILING_DAG]);
  assert.match(runs.stdout, new RegExp(`${start} \\.\\. \\S+\\s+completed`));
  assert.match(runs.stdout, new RegExp(`${start} \\.\\. \\S+\\s+failed`));
});

test('every command has --help', async () => {
  for (const command of ['status', 'backfill', 'pause', 'resume', 'trigger', 'runs', 'tasks', 'rerun-failed']) {
    const { stdout } = await cli([command, '--help']);
    assert.match(stdout, new RegExp(`Usage: ops ${command}`));
  }
  const bad = await cli(['backfill', DAG, '--from', iso(base + 3_600_000), '--to', iso(base)]).then(
    () => undefined,
    (err: { code: number; stderr: string }) => err,
  );
  assert.equal(bad?.code, 2);
  assert.match(bad?.stderr ?? '', /reversed/);
});
