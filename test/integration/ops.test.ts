/**
 * The ops CLI against the real dev server, with a worker whose DAG tasks are trivial:
 * backfill (through the schedule backfill API), status, pause/resume, trigger, runs, tasks and
 * rerun-failed, as text and as --json.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { PROJECT_ROOT, type Config } from '../../core/config.js';
import type { DagTaskInput } from '../../core/dag-task.js';
import { formatInstant } from '../../core/time.js';
import { dagRegistry } from '../../dags/index.js';
import { applySchedules } from '../../schedules/apply.js';
import { scheduleDefinitions, type DagScheduleDefinition } from '../../schedules/definitions.js';
import { listRuns, planBackfill, rerunFailed, taskStates, trigger, type OpsContext } from '../../schedules/ops-lib.js';
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
let failTask: string | undefined;

// A random whole hour in 2001, so runs never collide with anyone else's interval.
const base = Date.UTC(2001, 0, 1) + Math.floor(Math.random() * 300 * 24) * 3_600_000;
const iso = formatInstant;

/** What `--json` output carries: the typed data with Dates as strings. */
const asJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

function cli(args: string[], script = 'schedules/ops.ts') {
  // The CLI process registers the example DAGs too, as the stub worker does.
  return run(process.execPath, ['--import', 'tsx', '--import', './test/support/register-example-dags.ts', script, ...args], {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      SEGFLOW_SCHEDULE_PREFIX: config.schedules.prefix,
      TEMPORAL_TASK_QUEUE: config.temporal.taskQueue,
      LOG_LEVEL: 'error',
    },
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
  ctx = { client: worker.client, config };
  hourly = scheduleDefinitions(config, { dagIds: { hourly: DAG } })[0]!;
  await applySchedules(worker.client, [hourly], { prefix: config.schedules.prefix });
});

after(async () => {
  await worker?.client.schedule
    .getHandle(hourly.scheduleId)
    .delete()
    .catch(() => undefined);
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
  assert.deepEqual(
    intervals,
    [0, 1, 2].map((i) => ({ start: iso(base + i * 3_600_000), end: iso(base + (i + 1) * 3_600_000) })),
  );
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

  const statusJson = await cli(['status', DAG, '--json']);
  const [dagStatus, ...others] = JSON.parse(statusJson.stdout) as {
    dagId: string;
    exists: boolean;
    paused: boolean;
    nextRun: string;
    runs: { interval?: { start: string }; status: string }[];
  }[];
  assert.equal(others.length, 0);
  assert.equal(dagStatus?.dagId, DAG);
  assert.equal(dagStatus?.exists, true);
  assert.equal(dagStatus?.paused, false);
  assert.match(dagStatus?.nextRun ?? '', /^\d{4}-/);
  for (const i of intervals) assert.equal(dagStatus?.runs.find((r) => r.interval?.start === i?.start)?.status, 'COMPLETED');
});

test('`ops backfill --json` prints only the JSON result on stdout, progress on stderr', async () => {
  const from = iso(base + 5 * 3_600_000);
  const to = iso(base + 6 * 3_600_000);
  const { stdout, stderr } = await cli(['backfill', DAG, '--from', from, '--to', to, '--timeout', '3', '--json']);
  const result = JSON.parse(stdout) as {
    plan: { intervals: unknown[] };
    finished: boolean;
    progress: { expected: number; completed: number; runs: { workflowId: string }[] };
  };
  assert.deepEqual(result.plan.intervals, [{ start: from, end: to }]);
  assert.equal(result.finished, true);
  assert.equal(result.progress.expected, 1);
  assert.equal(result.progress.completed, 1);
  assert.deepEqual(
    result.progress.runs.map((r) => r.workflowId),
    [`${config.schedules.prefix}${DAG}/${from}`],
  );
  assert.match(stderr, /started 1\/1, running 0, completed 1, failed 0/);
});

test('pause and resume with a note show in status', async () => {
  await cli(['pause', DAG, '--note', 'warehouse migration INC-42']);
  assert.match((await cli(['status', DAG])).stdout, /PAUSED \(note: paused via ops CLI: warehouse migration INC-42\)/);
  const resumed = await cli(['resume', DAG, '--note', 'done', '--json']);
  assert.deepEqual(JSON.parse(resumed.stdout), { scheduleId: hourly.scheduleId, paused: false, note: 'resumed via ops CLI: done' });
  assert.match((await cli(['status', DAG])).stdout, /state\s+active/);
});

test('trigger, tasks and rerun-failed: a failed interval reruns only what it must', async () => {
  const start = iso(base + 10 * 3_600_000);
  failTask = 'transform_a';
  const first = await trigger(ctx, FAILING_DAG, { interval: start });
  assert.equal(first.workflowId, `${config.schedules.prefix}${FAILING_DAG}/${start}`);
  const failure = await worker.client.workflow
    .getHandle(first.workflowId)
    .result()
    .then(
      () => undefined,
      (err: unknown) => dagRunFailureDetails(err),
    );
  assert.deepEqual(failure?.failedTasks, ['transform_a']);

  const tasks = await taskStates(ctx, first.workflowId);
  assert.equal(tasks.status, 'FAILED');
  assert.deepEqual(
    tasks.tasks.map((t) => [t.taskId, t.state]),
    [
      ['extract', 'succeeded'],
      ['transform_a', 'failed'],
      ['transform_b', 'succeeded'],
      ['load', 'upstream_failed'],
    ],
  );
  const tasksCli = await cli(['tasks', first.workflowId]);
  assert.match(tasksCli.stdout, /transform_a\s+failed\s+2/);
  assert.deepEqual(JSON.parse((await cli(['tasks', first.workflowId, '--json'])).stdout), asJson(tasks));

  failTask = undefined;
  const rerun = await rerunFailed(ctx, FAILING_DAG, start);
  assert.deepEqual(rerun.skipTasks, ['extract', 'transform_b']);
  const result = (await worker.client.workflow.getHandle(rerun.workflowId).result()) as DagRunResult;
  assert.equal(result.rerunOf, first.runId);
  assert.deepEqual(
    result.tasks.map((t) => [t.taskId, t.state]),
    [
      ['extract', 'skipped'],
      ['transform_a', 'succeeded'],
      ['transform_b', 'skipped'],
      ['load', 'succeeded'],
    ],
  );
  await assert.rejects(rerunFailed(ctx, FAILING_DAG, start), /succeeded; nothing to rerun/);
  const refused = await cli(['rerun-failed', FAILING_DAG, '--interval', start, '--json']).then(
    () => undefined,
    (err: { code: number; stdout: string; stderr: string }) => err,
  );
  assert.equal(refused?.code, 2);
  assert.equal(refused?.stdout, '');
  assert.match(refused?.stderr ?? '', /nothing to rerun/);

  const runs = await cli(['runs', FAILING_DAG]);
  assert.match(runs.stdout, new RegExp(`${start} \\.\\. \\S+\\s+completed`));
  assert.match(runs.stdout, new RegExp(`${start} \\.\\. \\S+\\s+failed`));
  const runsJson = JSON.parse((await cli(['runs', FAILING_DAG, '--json'])).stdout) as {
    runId: string;
    status: string;
    interval?: { start: string };
  }[];
  const ofStart = runsJson.filter((r) => r.interval?.start === start);
  assert.deepEqual(
    ofStart.map((r) => [r.runId, r.status]),
    [
      [rerun.runId, 'COMPLETED'],
      [first.runId, 'FAILED'],
    ],
  );
  assert.deepEqual(runsJson, asJson(await listRuns(ctx, FAILING_DAG)));
});

test('`schedules:apply --dry-run --json` lists the same changes as its text, and changes nothing', async () => {
  const json = await cli(['--dry-run', '--json'], 'schedules/apply.ts');
  const result = JSON.parse(json.stdout) as {
    dryRun: boolean;
    noChanges: boolean;
    changes: { kind: string; scheduleId: string; detail: string }[];
  };
  assert.equal(result.dryRun, true);
  assert.ok(
    result.changes.some((c) => c.scheduleId === hourly.scheduleId),
    json.stdout,
  );
  const text = await cli(['--dry-run'], 'schedules/apply.ts');
  const verb: Record<string, string> = {
    created: 'would create',
    updated: 'would update',
    deleted: 'would delete',
    unchanged: 'unchanged',
    skipped: 'skipped',
  };
  for (const c of result.changes) assert.match(text.stdout, new RegExp(`${verb[c.kind]}\\s+${c.scheduleId.replace(/[.]/g, '\\.')}\\s+`));
  assert.match(text.stdout, result.noChanges ? /no changes/ : /\d+ change\(s\)/);
  await worker.client.schedule.getHandle(hourly.scheduleId).describe();
});

test('every command has --help', async () => {
  for (const command of ['status', 'backfill', 'pause', 'resume', 'trigger', 'runs', 'tasks', 'rerun-failed']) {
    const { stdout } = await cli([command, '--help']);
    assert.match(stdout, new RegExp(`Usage: ops ${command}`));
    assert.match(stdout, /--json/);
  }
  const bad = await cli(['backfill', DAG, '--from', iso(base + 3_600_000), '--to', iso(base)]).then(
    () => undefined,
    (err: { code: number; stderr: string }) => err,
  );
  assert.equal(bad?.code, 2);
  assert.match(bad?.stderr ?? '', /reversed/);
});
