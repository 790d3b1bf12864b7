import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createAlertActivities, type AlertLogger, type AlertWebhookBody } from '../../activities/alerts.js';
import type { SqlModelTaskInput } from '../../core/dag-task.js';
import { dagRegistry } from '../../dags/index.js';
import { exampleCleanup, exampleDiamond } from '../support/example-dags.js';
import '../support/register-example-dags.js';
import {
  DAG_ID_SEARCH_ATTRIBUTE,
  DAG_RUN_FAILED,
  LOGICAL_DATE_SEARCH_ATTRIBUTE,
  SCHEDULED_START_TIME_SEARCH_ATTRIBUTE,
  dagRunFailureDetails,
  dagRunWorkflowId,
  dataIntervalEndingAt,
  getTaskStatesQuery,
  normalizeDataInterval,
  skipTasksForRerun,
  type DagRunFailureDetails,
  type DagTaskState,
  type RunDagInput,
} from '../../workflows/dag-messages.js';
import { runDag } from '../../workflows/index.js';
import { createTimeSkippingEnv } from '../support/test-env.js';
import { recordingActivities as fakeActivities } from './support/dag-test-kit.js';

// The production workflows, with the example DAGs added to the bundle's registry.
const WORKFLOWS_PATH = fileURLToPath(new URL('../support/example-workflows.ts', import.meta.url));
const INTERVAL = { start: '2026-11-26T09:00:00Z', end: '2026-11-26T10:00:00Z' };

/** A promise that resolves once `parties` callers have arrived, or rejects after `timeoutMs`. */
function barrier(parties: number, timeoutMs: number) {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return async (): Promise<void> => {
    if (++arrived === parties) open();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(ApplicationFailure.nonRetryable(`only ${arrived} of ${parties} branches started`, 'NotParallel')),
        timeoutMs,
      );
    });
    try {
      await Promise.race([opened, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
}

function gate() {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let reached!: () => void;
  const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
  return {
    /** For the activity: signal arrival and wait for release. */
    pass: async (): Promise<void> => {
      reached();
      await released;
    },
    reached: reachedPromise,
    release,
  };
}

const byId = (tasks: readonly DagTaskState[]) => new Map(tasks.map((t) => [t.taskId, t]));

describe('runDag workflow', () => {
  let env: TestWorkflowEnvironment;
  let bundle: WorkflowBundleWithSourceMap;
  let queue = 0;

  before(async () => {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    [env, bundle] = await Promise.all([
      createTimeSkippingEnv(),
      bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('ERROR') }),
    ]);
  });

  after(async () => {
    await env?.teardown();
  });

  /** Runs `body` while a fresh worker with `activities` serves its own task queue. */
  async function withWorker<T>(
    activities: object,
    body: (start: (input: RunDagInput, workflowId?: string) => ReturnType<typeof startRun>) => Promise<T>,
  ): Promise<T> {
    const taskQueue = `run-dag-${++queue}`;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: bundle,
      activities,
    });
    return worker.runUntil(body((input, workflowId) => startRun(taskQueue, input, workflowId)));
  }

  function startRun(taskQueue: string, input: RunDagInput, workflowId?: string) {
    return env.client.workflow.start(runDag, {
      taskQueue,
      workflowId: workflowId ?? `${dagRunWorkflowId(input.dagId, input.interval?.start ?? INTERVAL.start)}#${queue}`,
      args: [input],
    });
  }

  async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
    const err = await promise.then(
      () => assert.fail('expected the run to fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError, `expected WorkflowFailedError, got ${String(err)}`);
    assert.ok(err.cause instanceof ApplicationFailure, `expected ApplicationFailure cause, got ${String(err.cause)}`);
    return err.cause;
  }

  test('parallel branches run concurrently; a SQL task gets its model and the interval', async () => {
    const bothStarted = barrier(2, 10_000);
    const fake = fakeActivities({ transform_a: bothStarted, transform_b: bothStarted });
    const result = await withWorker(fake.activities, async (start) => {
      const handle = await start({ dagId: 'example_diamond', interval: INTERVAL });
      return handle.result();
    });
    assert.deepEqual(
      result.tasks.map((t) => [t.taskId, t.state, t.attempts]),
      [
        ['extract', 'succeeded', 1],
        ['transform_a', 'succeeded', 1],
        ['transform_b', 'succeeded', 1],
        ['load', 'succeeded', 1],
      ],
    );
    assert.equal(fake.log[0], 'start extract');
    assert.equal(fake.log.at(-2), 'start load', 'load starts after both branches ended');
    const sql = fake.inputs.find((i) => i.taskId === 'transform_b') as SqlModelTaskInput;
    assert.deepEqual(sql, { dagId: 'example_diamond', taskId: 'transform_b', interval: INTERVAL, model: 'example_transform_b' });
    const a = fake.inputs.find((i) => i.taskId === 'transform_a');
    assert.deepEqual(a?.args, { branch: 'a' });
    assert.equal(fake.alerts.length, 0);
  });

  test('maxParallelism bounds concurrent tasks; local tasks run too', async () => {
    const fake = fakeActivities(
      Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`part_${i + 1}`, () => new Promise((r) => setTimeout(r, 50))])),
    );
    const result = await withWorker(fake.activities, async (start) =>
      (await start({ dagId: 'example_fanout', interval: INTERVAL })).result(),
    );
    assert.ok(result.tasks.every((t) => t.state === 'succeeded'));
    assert.equal(fake.maxActive(), 2);
  });

  test('the query reports true states while a task runs and after the run', async () => {
    const extract = gate();
    const fake = fakeActivities({ extract: extract.pass });
    await withWorker(fake.activities, async (start) => {
      const handle = await start({ dagId: 'example_diamond', interval: INTERVAL });
      await extract.reached;
      const during = byId(await handle.query(getTaskStatesQuery));
      assert.equal(during.get('extract')?.state, 'running');
      assert.equal(during.get('extract')?.attempts, 1);
      assert.ok(during.get('extract')?.startedAt);
      assert.equal(during.get('extract')?.endedAt, undefined);
      for (const id of ['transform_a', 'transform_b', 'load']) {
        assert.deepEqual(during.get(id), { taskId: id, state: 'queued', attempts: 0 });
      }
      extract.release();
      const result = await handle.result();
      const afterwards = await handle.query(getTaskStatesQuery);
      assert.deepEqual(afterwards, result.tasks);
      for (const t of afterwards) {
        assert.equal(t.state, 'succeeded');
        assert.ok(t.startedAt !== undefined && t.endedAt !== undefined && t.startedAt <= t.endedAt);
      }
    });
  });

  test('the query shows a task waiting for its next attempt as up_for_retry', async () => {
    const firstFailure = gate();
    const fake = fakeActivities({
      work: (_input, call) => {
        if (call === 1) {
          firstFailure.release();
          throw new Error('work: transient');
        }
      },
    });
    await withWorker(fake.activities, async (start) => {
      const handle = await start({ dagId: 'example_cleanup', interval: INTERVAL });
      await firstFailure.pass();
      let work: DagTaskState | undefined;
      for (let i = 0; i < 100 && work?.state !== 'up_for_retry'; i++) {
        work = byId(await handle.query(getTaskStatesQuery)).get('work');
        if (work?.state !== 'up_for_retry') await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(work?.state, 'up_for_retry');
      assert.equal(work?.attempts, 1);
      assert.equal(work?.error, 'work: transient');
      assert.ok(work?.nextAttemptAt !== undefined && work.endedAt === undefined);
      // The task's own initialInterval (30s), not the DAG default (1s).
      assert.ok(Date.parse(work.nextAttemptAt) - Date.parse(work.startedAt ?? '') >= 30_000);
      const done = byId((await handle.result()).tasks).get('work');
      assert.equal(done?.state, 'succeeded');
      assert.equal(done?.attempts, 2);
      assert.equal(done?.error, 'work: transient', 'the failed attempt stays visible');
    });
  });

  test('retries follow each task policy; a failure marks downstream upstream_failed, raises one alert, all_done cleanup runs', async () => {
    const fake = fakeActivities({
      prepare: (_input, call) => {
        if (call === 1) throw new Error('prepare: transient');
      },
      work: () => {
        throw new Error('work: warehouse unavailable');
      },
    });
    await withWorker(fake.activities, async (start) => {
      const handle = await start({ dagId: 'example_cleanup', interval: INTERVAL, uiBaseUrl: 'http://ui.example:8233/' });
      const failure = await failureOf(handle.result());
      assert.equal(failure.type, DAG_RUN_FAILED);
      assert.match(failure.message, /DAG example_cleanup failed .*: task work failed/);
      const details = failure.details?.[0] as DagRunFailureDetails;
      assert.deepEqual(details.failedTasks, ['work']);

      // prepare (local activity) uses the DAG default of 2 attempts, work overrides it with 3.
      assert.equal(fake.calls('prepare'), 2);
      assert.equal(fake.calls('work'), 3);
      assert.equal(fake.calls('publish'), 0);
      assert.equal(fake.calls('side'), 1);
      assert.equal(fake.calls('cleanup'), 1);
      assert.ok(fake.log.indexOf('start cleanup') > fake.log.lastIndexOf('end work'));

      const states = byId(await handle.query(getTaskStatesQuery));
      assert.deepEqual(
        [...states.values()].map((t) => [t.taskId, t.state, t.attempts]),
        [
          ['prepare', 'succeeded', 2],
          ['work', 'failed', 3],
          ['publish', 'upstream_failed', 0],
          ['side', 'succeeded', 1],
          ['cleanup', 'succeeded', 1],
        ],
      );
      assert.equal(states.get('work')?.error, 'work: warehouse unavailable');
      // Backoff 30s then 60s between work's attempts, on the workflow clock.
      const work = states.get('work');
      assert.ok(work?.startedAt !== undefined && work.endedAt !== undefined);
      assert.ok(Date.parse(work.endedAt) - Date.parse(work.startedAt) >= 90_000);

      assert.equal(fake.alerts.length, 1);
      const [alert] = fake.alerts;
      assert.equal(alert?.dagId, 'example_cleanup');
      assert.deepEqual(alert?.taskIds, ['work']);
      assert.deepEqual(alert?.interval, INTERVAL);
      assert.equal(alert?.dedupKey, `dag_run_failed/example_cleanup/work/${INTERVAL.start}`);
      assert.match(alert?.message ?? '', /work failed after 3 attempts: work: warehouse unavailable/);
      assert.equal(
        alert?.links[0]?.url,
        `http://ui.example:8233/namespaces/default/workflows/${encodeURIComponent(handle.workflowId)}/${
          (await handle.describe()).runId
        }/history`,
      );
    });
  });

  test('cancelling a run stops it without an alert and starts no further task', async () => {
    const extract = gate();
    const fake = fakeActivities({ extract: extract.pass });
    await withWorker(fake.activities, async (start) => {
      const handle = await start({ dagId: 'example_diamond', interval: INTERVAL });
      await extract.reached;
      await handle.cancel();
      // The fake does not heartbeat, so it never hears of the cancellation and completes.
      extract.release();
      const err = await handle.result().then(
        () => assert.fail('expected the run to be cancelled'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure, String(err));
      const states = byId(await handle.query(getTaskStatesQuery));
      assert.equal(states.get('extract')?.state, 'succeeded');
      assert.deepEqual(states.get('transform_a'), {
        taskId: 'transform_a',
        state: 'failed',
        attempts: 0,
        error: 'not started: the run was cancelled',
      });
      assert.equal(states.get('load')?.state, 'upstream_failed');
    });
    assert.equal(fake.calls('transform_a') + fake.calls('transform_b') + fake.calls('load'), 0);
    assert.equal(fake.alerts.length, 0);
  });

  test('a non-retryable failure is not retried', async () => {
    const fake = fakeActivities({
      work: () => {
        throw ApplicationFailure.nonRetryable('bad input', 'BadInput');
      },
    });
    await withWorker(fake.activities, async (start) => {
      const failure = await failureOf((await start({ dagId: 'example_cleanup', interval: INTERVAL })).result());
      assert.equal(failure.type, DAG_RUN_FAILED);
    });
    assert.equal(fake.calls('work'), 1);
    assert.equal(fake.alerts.length, 1);
  });

  test('rerunning a failed interval with computed skipTasks skips what succeeded', async () => {
    let broken = true;
    const fake = fakeActivities({
      work: () => {
        if (broken) throw ApplicationFailure.nonRetryable('schema mismatch', 'SchemaMismatch');
      },
    });
    await withWorker(fake.activities, async (start) => {
      const workflowId = `${dagRunWorkflowId('example_cleanup', INTERVAL.start)}#rerun`;
      const first = await start({ dagId: 'example_cleanup', interval: INTERVAL }, workflowId);
      const failure = await first.result().catch((e: unknown) => e);
      const previous = await first.query(getTaskStatesQuery);
      assert.deepEqual(previous, dagRunFailureDetails(failure)?.tasks, 'the failure carries the same states');

      const skipTasks = skipTasksForRerun(exampleCleanup, previous);
      // cleanup succeeded too, but it is downstream of work, which runs again.
      assert.deepEqual(skipTasks, ['prepare', 'side']);

      broken = false;
      const firstRunId = (await first.describe()).runId;
      const second = await start({ dagId: 'example_cleanup', interval: INTERVAL, skipTasks, rerunOf: firstRunId }, workflowId);
      const result = await second.result();
      assert.equal(result.rerunOf, firstRunId);
      assert.deepEqual(
        result.tasks.map((t) => [t.taskId, t.state]),
        [
          ['prepare', 'skipped'],
          ['work', 'succeeded'],
          ['publish', 'succeeded'],
          ['side', 'skipped'],
          ['cleanup', 'succeeded'],
        ],
      );
    });
    assert.equal(fake.calls('prepare'), 1);
    assert.equal(fake.calls('side'), 1);
    assert.equal(fake.calls('work'), 2);
    assert.equal(fake.calls('publish'), 1);
    assert.equal(fake.calls('cleanup'), 2);
    assert.equal(fake.alerts.length, 1, 'only the failed run alerted');
  });

  test('the data interval comes from the argument and sets DagId and LogicalDate', async () => {
    const fake = fakeActivities();
    await withWorker(fake.activities, async (start) => {
      const handle = await start({
        dagId: 'example_diamond',
        interval: { start: '2026-11-26T10:00:00.000+01:00', end: '2026-11-26T10:00:00Z' },
      });
      const result = await handle.result();
      assert.deepEqual(result.interval, INTERVAL);
      assert.ok(fake.inputs.every((i) => i.interval.start === INTERVAL.start && i.interval.end === INTERVAL.end));
      const attributes = (await handle.describe()).typedSearchAttributes;
      assert.equal(attributes.get(DAG_ID_SEARCH_ATTRIBUTE), 'example_diamond');
      assert.equal(attributes.get(LOGICAL_DATE_SEARCH_ATTRIBUTE)?.toISOString(), '2026-11-26T09:00:00.000Z');
    });
  });

  test('a scheduled run takes its interval from TemporalScheduledStartTime', async () => {
    const fake = fakeActivities();
    await withWorker(fake.activities, async () => {
      const handle = await env.client.workflow.start(runDag, {
        taskQueue: `run-dag-${queue}`,
        workflowId: `example_diamond/scheduled#${queue}`,
        args: [{ dagId: 'example_diamond' }],
        // What a schedule sets: its nominal time, not an argument.
        typedSearchAttributes: [{ key: SCHEDULED_START_TIME_SEARCH_ATTRIBUTE, value: new Date('2026-11-26T10:00:00Z') }],
      });
      const result = await handle.result();
      assert.deepEqual(result.interval, INTERVAL);
    });
  });

  test('a run without an interval that was not scheduled fails, saying what to pass', async () => {
    const fake = fakeActivities();
    await withWorker(fake.activities, async (start) => {
      const failure = await failureOf((await start({ dagId: 'example_diamond' })).result());
      assert.equal(failure.type, 'MissingDataInterval');
      assert.match(failure.message, /pass input.interval/);
    });
    assert.equal(fake.inputs.length, 0);
  });

  test('an unknown DAG or skip task fails the run, naming it', async () => {
    const fake = fakeActivities();
    await withWorker(fake.activities, async (start) => {
      const unknownDag = await failureOf((await start({ dagId: 'no_such_dag', interval: INTERVAL })).result());
      assert.equal(unknownDag.type, 'UnknownDag');
      assert.match(unknownDag.message, /Unknown DAG "no_such_dag"/);
      const unknownTask = await failureOf((await start({ dagId: 'example_diamond', interval: INTERVAL, skipTasks: ['extrct'] })).result());
      assert.equal(unknownTask.type, 'UnknownTask');
      assert.match(unknownTask.message, /extrct/);
    });
  });

  test('the real raiseAlert posts one webhook; a broken channel does not change the outcome', async () => {
    const received: AlertWebhookBody[] = [];
    const server = await listen(async (req) => {
      received.push(JSON.parse(await bodyOf(req)) as AlertWebhookBody);
    });
    const logged: { level: string; msg: string }[] = [];
    const logger: AlertLogger = {
      error: (_obj, msg) => logged.push({ level: 'error', msg }),
      warn: (_obj, msg) => logged.push({ level: 'warn', msg }),
      info: (_obj, msg) => logged.push({ level: 'info', msg }),
    };
    const { port } = server.address() as AddressInfo;
    const alerting = createAlertActivities({
      logger,
      // Port 9 (discard) refuses connections on loopback: a channel that is down.
      webhookUrls: [`http://127.0.0.1:${port}/hook`, 'http://127.0.0.1:9/hook'],
      uiBaseUrl: 'http://127.0.0.1:8233',
      retryDelaysMs: [10, 10],
    });
    const fake = fakeActivities({
      work: () => {
        throw ApplicationFailure.nonRetryable('disk full', 'DiskFull');
      },
    });
    try {
      await withWorker({ ...fake.activities, raiseAlert: alerting.raiseAlert }, async (start) => {
        const failure = await failureOf((await start({ dagId: 'example_cleanup', interval: INTERVAL })).result());
        assert.equal(failure.type, DAG_RUN_FAILED);
      });
    } finally {
      server.close();
    }
    assert.equal(received.length, 1);
    const [body] = received;
    assert.equal(body?.kind, 'dag_run_failed');
    assert.deepEqual(body?.taskIds, ['work']);
    assert.match(body?.text ?? '', /DAG example_cleanup failed/);
    assert.match(body?.links[0]?.url ?? '', /^http:\/\/127\.0\.0\.1:8233\/namespaces\/default\/workflows\/example_cleanup%2F/);
    assert.deepEqual(
      logged.map((l) => l.level),
      ['error', 'warn', 'warn', 'error'],
      'the alert itself, two retries of the broken channel, then giving up on it',
    );
  });
});

describe('runDag contract helpers', () => {
  test('workflow ids and data intervals', () => {
    assert.equal(dagRunWorkflowId('hourly_pipeline', '2026-11-26T09:00:00.000Z'), 'hourly_pipeline/2026-11-26T09:00:00Z');
    assert.equal(dagRunWorkflowId('x', new Date('2026-11-26T09:00:00.250Z')), 'x/2026-11-26T09:00:00.250Z');
    assert.deepEqual(dataIntervalEndingAt('daily', new Date('2026-11-27T00:00:00Z')), {
      start: '2026-11-26T00:00:00Z',
      end: '2026-11-27T00:00:00Z',
    });
    assert.throws(() => normalizeDataInterval({ start: '2026-11-26T09:00:00', end: INTERVAL.end }), /RFC 3339 instant/);
    assert.throws(() => normalizeDataInterval({ start: INTERVAL.end, end: INTERVAL.start }), /must be before its end/);
  });

  test('skipTasksForRerun reruns failed tasks and everything downstream of them', () => {
    const state = (taskId: string, s: DagTaskState['state']): DagTaskState => ({ taskId, state: s, attempts: 1 });
    assert.deepEqual(
      skipTasksForRerun(exampleDiamond, [
        state('extract', 'succeeded'),
        state('transform_a', 'failed'),
        state('transform_b', 'succeeded'),
        state('load', 'upstream_failed'),
      ]),
      ['extract', 'transform_b'],
    );
    // A task missing from the previous run (the DAG changed) runs, and so does its downstream.
    assert.deepEqual(skipTasksForRerun(exampleDiamond, [state('extract', 'skipped')]), ['extract']);
    assert.ok(dagRegistry.has('example_diamond'));
  });
});

async function listen(handle: (req: IncomingMessage) => Promise<void>): Promise<Server> {
  const server = createServer((req, res) => {
    handle(req).then(
      () => res.writeHead(204).end(),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
