import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDuration, formatRuns, formatStatus, formatTaskStates, toJson } from '../../schedules/ops-format.js';
import type { DagStatus, RunSummary } from '../../schedules/ops-lib.js';

const run = (hour: number, status: string, durationMs?: number): RunSummary => ({
  workflowId: `hourly_pipeline/2026-11-26T${String(hour).padStart(2, '0')}:00:00Z`,
  runId: `run-${hour}`,
  status,
  interval: { start: `2026-11-26T${String(hour).padStart(2, '0')}:00:00Z`, end: `2026-11-26T${String(hour + 1).padStart(2, '0')}:00:00Z` },
  startTime: new Date(Date.UTC(2026, 10, 26, hour + 1, 5)),
  ...(durationMs === undefined ? {} : { durationMs }),
});

test('durations read as ms, s, minutes and hours', () => {
  assert.deepEqual([undefined, 250, 4_400, 125_000, 7_500_000].map(formatDuration), ['-', '250ms', '4s', '2m05s', '2h05m']);
});

test('runs table: one aligned line per run, a running run aged at now', () => {
  const now = Date.UTC(2026, 10, 26, 10, 5, 30);
  assert.equal(
    formatRuns([run(9, 'RUNNING'), run(8, 'COMPLETED', 61_000)], { now }),
    [
      'INTERVAL                                      STATE      DURATION  STARTED               WORKFLOW ID',
      '2026-11-26T09:00:00Z .. 2026-11-26T10:00:00Z  running    30s       2026-11-26T10:05:00Z  hourly_pipeline/2026-11-26T09:00:00Z',
      '2026-11-26T08:00:00Z .. 2026-11-26T09:00:00Z  completed  61s       2026-11-26T09:05:00Z  hourly_pipeline/2026-11-26T08:00:00Z',
    ].join('\n'),
  );
});

test('status: a missing schedule says how to create it; runs are indented under "last runs"', () => {
  const statuses: DagStatus[] = [
    {
      dagId: 'hourly_pipeline',
      scheduleId: 'segflow-hourly_pipeline',
      schedule: { cron: '5 * * * *', timezone: 'UTC', overlap: 'BUFFER_ONE', catchupWindow: '6h' },
      exists: false,
      runs: [run(8, 'FAILED', 2_000)],
    },
    { dagId: 'example_diamond', scheduleId: 'segflow-example_diamond', exists: true, paused: true, note: 'INC-42', runs: [] },
  ];
  const lines = formatStatus(statuses).split('\n');
  assert.equal(lines[0], 'hourly_pipeline');
  assert.equal(lines[1], '  schedule   segflow-hourly_pipeline: 5 * * * * (UTC), overlap BUFFER_ONE, catch-up 6h');
  assert.equal(lines[2], '  state      MISSING on the server (run npm run schedules:apply)');
  assert.equal(lines[3], '  last runs');
  assert.match(lines[4] ?? '', /^ {4}INTERVAL {2,}STATE/);
  assert.match(
    lines[5] ?? '',
    /^ {4}2026-11-26T08:00:00Z \.\. 2026-11-26T09:00:00Z {2}failed {2}2s {8}2026-11-26T09:05:00Z {2}hourly_pipeline\/2026-11-26T08:00:00Z$/,
  );
  assert.deepEqual(lines.slice(7), [
    'example_diamond',
    '  schedule   segflow-example_diamond: no schedule defined (manual/backfill only)',
    '  state      PAUSED (note: INC-42)',
    '  next run   -',
    '  last runs  none',
    '',
  ]);
});

test('task states: the run on the first line, then the tasks with tries, duration and error', () => {
  const text = formatTaskStates({
    workflowId: 'example_diamond/2001-01-01T00:00:00Z',
    runId: 'r1',
    status: 'FAILED',
    source: 'failure details',
    tasks: [
      { taskId: 'extract', state: 'succeeded', attempts: 1, startedAt: '2001-01-01T01:00:00Z', endedAt: '2001-01-01T01:00:03Z' },
      { taskId: 'transform_a', state: 'failed', attempts: 2, error: 'transform_a: injected failure' },
      { taskId: 'load', state: 'upstream_failed', attempts: 0 },
    ],
  });
  assert.equal(
    text,
    [
      'example_diamond/2001-01-01T00:00:00Z (run r1): failed, from failure details',
      'TASK         STATE            TRIES  DURATION  ERROR',
      'extract      succeeded        1      3s',
      'transform_a  failed           2      -         transform_a: injected failure',
      'load         upstream_failed  0      -',
    ].join('\n'),
  );
});

test('--json carries Dates as RFC 3339 strings', () => {
  assert.deepEqual(JSON.parse(toJson([run(8, 'COMPLETED', 1_000)])), [
    {
      workflowId: 'hourly_pipeline/2026-11-26T08:00:00Z',
      runId: 'run-8',
      status: 'COMPLETED',
      interval: { start: '2026-11-26T08:00:00Z', end: '2026-11-26T09:00:00Z' },
      startTime: '2026-11-26T09:05:00.000Z',
      durationMs: 1_000,
    },
  ]);
});
