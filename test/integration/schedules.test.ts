/**
 * schedules:apply against the real dev server: create, no-op, update in place, delete; only
 * schedules segflow created under this test's prefix are touched.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import { PROJECT_ROOT, type Config } from '../../core/config.js';
import { applySchedules } from '../../schedules/apply.js';
import { SEGFLOW_SCHEDULE_MEMO, launcherWorkflowId, scheduleDefinitions, type DagScheduleDefinition } from '../../schedules/definitions.js';
import { createTemporalClient } from '../../workers/client.js';
import { isolatedConfig } from '../support/dag-worker.js';

const run = promisify(execFile);

let config: Config;
let client: Client;
let defs: DagScheduleDefinition[];

before(async () => {
  config = isolatedConfig('schedules');
  client = await createTemporalClient(config);
  defs = scheduleDefinitions(config, { dagIds: { hourly: 'example_diamond', nightly: 'example_cleanup' } });
});

after(async () => {
  // Leave nothing behind: deleting through apply with no definitions also exercises the prefix scoping.
  for (let i = 0; i < 20; i++) {
    await applySchedules(client, [], { prefix: config.schedules.prefix });
    const left = await Promise.all(
      [...defs.map((d) => d.scheduleId), `${config.schedules.prefix}hourly_pipeline`, `${config.schedules.prefix}nightly_segmentation`].map(
        (id) =>
          client.schedule
            .getHandle(id)
            .describe()
            .then(
              () => id,
              () => undefined,
            ),
      ),
    );
    for (const id of left)
      if (id !== undefined)
        await client.schedule
          .getHandle(id)
          .delete()
          .catch(() => undefined);
    if (left.every((id) => id === undefined)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  await client?.connection.close();
});

test('apply creates the schedules, then reports no changes on a second run', async () => {
  const first = await applySchedules(client, defs, { prefix: config.schedules.prefix });
  assert.deepEqual(
    first.changes.map((c) => [c.kind, c.scheduleId]),
    defs.map((d) => ['created', d.scheduleId]),
  );
  assert.equal(first.noChanges, false);

  const second = await applySchedules(client, defs, { prefix: config.schedules.prefix });
  assert.equal(second.noChanges, true);
  assert.deepEqual(
    second.changes.map((c) => c.kind),
    ['unchanged', 'unchanged'],
  );

  const hourly = await client.schedule.getHandle(defs[0]!.scheduleId).describe();
  assert.deepEqual(hourly.memo?.[SEGFLOW_SCHEDULE_MEMO], { prefix: config.schedules.prefix, dagId: 'example_diamond' });
  assert.equal(hourly.policies.overlap, 'BUFFER_ONE');
  assert.equal(hourly.policies.catchupWindow, 6 * 3_600_000);
  assert.equal(hourly.action.type, 'startWorkflow');
  assert.equal(hourly.action.type === 'startWorkflow' ? hourly.action.workflowId : '', launcherWorkflowId(defs[0]!));
  assert.equal(hourly.action.type === 'startWorkflow' ? hourly.action.workflowType : '', 'scheduledDagRun');
  // Fires at minute 5 of every hour, in UTC.
  assert.ok(hourly.info.nextActionTimes.every((t) => t.getUTCMinutes() === config.schedules.hourlyMinute && t.getUTCSeconds() === 0));

  const nightly = await client.schedule.getHandle(defs[1]!.scheduleId).describe();
  assert.equal(nightly.policies.overlap, 'SKIP');
  assert.equal(nightly.policies.catchupWindow, 3_600_000);
});

test('a changed cron is updated in place (keeping an operator pause); the next apply is a no-op', async () => {
  const handle = client.schedule.getHandle(defs[0]!.scheduleId);
  const before = await handle.describe();
  await handle.pause('paused by a test operator');

  const changed = defs.map((d, i) => (i === 0 ? { ...d, cron: '17 * * * *', description: `${d.dagId}: minute 17` } : d));
  const result = await applySchedules(client, changed, { prefix: config.schedules.prefix });
  assert.deepEqual(
    result.changes.map((c) => c.kind),
    ['updated', 'unchanged'],
  );

  const after = await handle.describe();
  assert.equal(after.info.createdAt.getTime(), before.info.createdAt.getTime(), 'same schedule, not recreated');
  assert.ok(after.info.nextActionTimes.length === 0 || after.info.nextActionTimes.every((t) => t.getUTCMinutes() === 17));
  assert.deepEqual(after.spec.calendars?.[0]?.minute, [{ start: 17, end: 17, step: 1 }]);
  assert.equal(after.state.paused, true, 'apply keeps a pause');
  assert.equal(after.state.note, 'paused by a test operator');

  assert.equal((await applySchedules(client, changed, { prefix: config.schedules.prefix })).noChanges, true);
  defs = changed;
});

test('a schedule the code no longer has is deleted; other prefixes are left alone', async () => {
  // Another deployment's schedule (different prefix) must survive.
  const otherConfig = isolatedConfig('schedules-other');
  const [other] = scheduleDefinitions(otherConfig, { dagIds: { hourly: 'example_fanout' } });
  await applySchedules(client, [other!], { prefix: otherConfig.schedules.prefix });
  try {
    const kept = [defs[0]!];
    let deleted = false;
    // Schedule listing is eventually consistent: a schedule created a moment ago may not be listed yet.
    for (let i = 0; i < 40 && !deleted; i++) {
      const result = await applySchedules(client, kept, { prefix: config.schedules.prefix });
      deleted = result.changes.some((c) => c.kind === 'deleted' && c.scheduleId === defs[1]!.scheduleId);
      assert.ok(!result.changes.some((c) => c.scheduleId === other!.scheduleId), 'never touches another prefix');
      if (!deleted) await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(deleted, 'the removed schedule is deleted');
    await assert.rejects(client.schedule.getHandle(defs[1]!.scheduleId).describe(), ScheduleNotFoundError);
    await client.schedule.getHandle(defs[0]!.scheduleId).describe();
    await client.schedule.getHandle(other!.scheduleId).describe();
  } finally {
    await client.schedule
      .getHandle(other!.scheduleId)
      .delete()
      .catch(() => undefined);
  }
});

test('npm run schedules:apply (the CLI) is idempotent and says so', async () => {
  const env = { ...process.env, SEGFLOW_SCHEDULE_PREFIX: config.schedules.prefix, TEMPORAL_TASK_QUEUE: config.temporal.taskQueue };
  const cli = (args: string[] = []) =>
    run(process.execPath, ['--import', 'tsx', 'schedules/apply.ts', ...args], { cwd: PROJECT_ROOT, env });
  const help = await cli(['--help']);
  assert.match(help.stdout, /--dry-run/);

  const first = await cli();
  assert.match(first.stdout, /created|unchanged/);
  const second = await cli();
  assert.match(second.stdout, /no changes/);
  assert.doesNotMatch(second.stdout, /created|updated/);
});
