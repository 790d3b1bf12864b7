import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deadlineInstant, formatLateness } from '../../core/deadlines.js';
import { defineDag } from '../../dags/dsl.js';
import { formatRuns } from '../../schedules/ops-format.js';
import { activityMetricsInterceptor, metricsText } from '../../workers/metrics.js';
import { DEADLINE_MEMO_KEY, getTaskStatesQuery, type DagRunResult, type DeadlineOutcome } from '../../workflows/dag-messages.js';
import { EXAMPLE_TASK_ACTIVITY } from '../support/example-dags.js';
import { createDagTestKit, lastHour, recordingActivities, type DagTestKit } from './support/dag-test-kit.js';

describe('DAG deadlines', () => {
  let kit: DagTestKit;
  before(async () => {
    kit = await createDagTestKit();
  });
  after(async () => {
    await kit?.teardown();
  });

  test('a run held past its deadline raises one alert per deadline, keeps going and says how late it finished', async () => {
    // slow's first attempt fails and its retry waits 40 minutes: the run is held on a workflow timer
    // past both the task's deadline (10 min) and the run's (30 min), then succeeds.
    const fake = recordingActivities({
      slow: (_input, call) => {
        if (call === 1) throw new Error('warehouse busy');
      },
    });
    const interval = await lastHour(kit.env);
    const { result, memo } = await kit.withWorker(
      fake.activities,
      async (start) => {
        const handle = await start({ dagId: 'example_deadline', interval, uiBaseUrl: 'http://ui.example:8233' });
        const result = (await handle.result()) as DagRunResult;
        return { result, memo: (await handle.describe()).memo };
      },
      { interceptors: { activity: [activityMetricsInterceptor] } },
    );
    assert.ok(
      result.tasks.every((t) => t.state === 'succeeded'),
      'the run kept going to the end',
    );

    const runDeadline = Date.parse(interval.end) + 30 * 60_000;
    assert.equal(fake.alerts.length, 2, 'one alert for the run, one for the task');
    const runAlert = fake.alerts.find((a) => a.taskIds === undefined);
    const taskAlert = fake.alerts.find((a) => a.taskIds?.[0] === 'slow');
    assert.equal(runAlert?.kind, 'dag_deadline_missed');
    assert.equal(runAlert?.severity, 'error');
    assert.equal(runAlert?.dagId, 'example_deadline');
    assert.deepEqual(runAlert?.interval, { start: interval.start.replace('.000', ''), end: interval.end.replace('.000', '') });
    assert.match(runAlert?.summary ?? '', new RegExp(`deadline ${new Date(runDeadline).toISOString().replace('.000', '')}`));
    assert.match(runAlert?.links[0]?.url ?? '', /^http:\/\/ui\.example:8233\/namespaces\/default\/workflows\/example_deadline%2F/);
    assert.equal(runAlert?.dedupKey, `dag_deadline_missed/example_deadline/run/${interval.start.replace('.000', '')}`);
    assert.equal(taskAlert?.severity, 'warning', 'the default severity');

    const deadline = result.deadline as DeadlineOutcome;
    assert.equal(deadline.missed, true);
    assert.equal(deadline.alerted, true);
    // Held 40 min from about the interval's end: about 10 min late.
    assert.ok(
      deadline.lateByMs !== undefined && deadline.lateByMs >= 9 * 60_000 && deadline.lateByMs < 15 * 60_000,
      String(deadline.lateByMs),
    );
    assert.deepEqual(memo?.[DEADLINE_MEMO_KEY], deadline, 'ops status and the UI read the outcome from the memo');
    const slow = result.tasks.find((t) => t.taskId === 'slow');
    assert.equal(slow?.deadline?.missed, true);
    assert.ok((slow?.deadline?.lateByMs ?? 0) >= 29 * 60_000);
    assert.equal(result.tasks.find((t) => t.taskId === 'prepare')?.deadline, undefined);

    const metrics = await metricsText();
    assert.match(metrics, /segflow_dag_deadlines_missed_total\{dag="example_deadline",scope="run"\} 1/);
    assert.match(metrics, /segflow_dag_deadlines_missed_total\{dag="example_deadline",scope="slow"\} 1/);

    const summary = { workflowId: 'w', runId: 'r', startTime: new Date(interval.end) };
    const table = formatRuns([{ ...summary, status: 'COMPLETED', deadline }]);
    assert.match(table, /DEADLINE/);
    assert.match(table, new RegExp(`MISSED ${deadline.deadline}, late \\d+m`));
    assert.match(formatRuns([{ ...summary, status: 'RUNNING', deadline: { ...deadline, lateByMs: undefined } }]), /still running/);
  });

  test('a run that finishes in time raises none', async () => {
    const fake = recordingActivities();
    const interval = await lastHour(kit.env);
    const result = await kit.withWorker(fake.activities, async (start) => {
      const handle = await start({ dagId: 'example_deadline', interval });
      const states = await handle.query(getTaskStatesQuery);
      assert.ok(states.find((t) => t.taskId === 'slow')?.deadline?.missed === false);
      return (await handle.result()) as DagRunResult;
    });
    assert.equal(fake.alerts.length, 0);
    assert.deepEqual(result.deadline, {
      deadline: new Date(Date.parse(interval.end) + 30 * 60_000).toISOString().replace('.000', ''),
      missed: false,
      alerted: false,
    });
    assert.equal(fake.calls('slow'), 1);
  });

  test('a run started after its deadline (a backfill) is late by nature and raises none', async () => {
    const fake = recordingActivities();
    const interval = { start: '2026-01-05T09:00:00Z', end: '2026-01-05T10:00:00Z' };
    const result = await kit.runToEnd(fake.activities, { dagId: 'example_deadline', interval });
    assert.equal(fake.alerts.length, 0);
    assert.equal(result.deadline?.missed, true);
    assert.equal(result.deadline?.alerted, false);
  });

  test('a time-of-day deadline is computed in the schedule zone inside the workflow', async () => {
    const fake = recordingActivities();
    const interval = { start: '2026-11-26T00:00:00Z', end: '2026-11-27T00:00:00Z' };
    const result = await kit.runToEnd(fake.activities, { dagId: 'example_morning_deadline', interval });
    assert.equal(result.deadline?.deadline, '2026-11-27T04:00:00Z', '05:00 in Berlin (UTC+1 in November)');
  });
});

describe('deadline instants', () => {
  test('after: relative to the interval end; at: the first time of day in the zone at or after it', () => {
    const end = Date.parse('2026-11-27T00:00:00Z');
    assert.equal(new Date(deadlineInstant({ after: '30m' }, end)).toISOString(), '2026-11-27T00:30:00.000Z');
    assert.equal(new Date(deadlineInstant({ at: '05:00' }, end)).toISOString(), '2026-11-27T05:00:00.000Z');
    // Berlin is UTC+1 in November: 05:00 local is 04:00Z.
    assert.equal(new Date(deadlineInstant({ at: '05:00', timezone: 'Europe/Berlin' }, end)).toISOString(), '2026-11-27T04:00:00.000Z');
    // Summer time (UTC+2), and an interval ending after 05:00 local: the next morning.
    const summerEnd = Date.parse('2026-07-01T06:00:00Z');
    assert.equal(new Date(deadlineInstant({ at: '05:00' }, summerEnd, 'Europe/Berlin')).toISOString(), '2026-07-02T03:00:00.000Z');
    assert.equal(new Date(deadlineInstant({ at: '05:00', timezone: 'America/New_York' }, end)).toISOString(), '2026-11-27T10:00:00.000Z');
    assert.equal(formatLateness(10 * 60_000), '10m');
    assert.equal(formatLateness(65 * 60_000 + 30_000), '1h05m');
  });

  test('bad deadlines are rejected when the DAG is defined', () => {
    assert.throws(
      () =>
        defineDag({
          id: 'bad_deadline',
          interval: 'daily',
          defaultTaskOptions: {
            retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 1 },
            startToCloseTimeout: '1m',
          },
          maxParallelism: 1,
          deadline: { at: '25:00', timezone: 'Mars/Olympus' },
          tasks: [{ id: 'a', run: { activity: EXAMPLE_TASK_ACTIVITY }, deadline: { after: 'soon' as '1m' } }],
        }),
      (err: Error) => /25:00/.test(err.message) && /Mars\/Olympus/.test(err.message) && /soon/.test(err.message),
    );
  });
});
