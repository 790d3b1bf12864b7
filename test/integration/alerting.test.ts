/**
 * Alerting end to end on the real dev server: a DAG task that always fails produces exactly one
 * alert per channel (generic webhook, Slack, PagerDuty Events v2) at a local receiver, carrying
 * DAG, task, interval and a UI link; with the receiver down the run ends exactly the same way
 * and the failed delivery is logged.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { createAlertActivities, type AlertWebhookBody } from '../../activities/alerts.js';
import { createLogger } from '../../core/logger.js';
import type { DagTaskInput } from '../../core/dag-task.js';
import { startDagRun, type OpsContext } from '../../schedules/ops-lib.js';
import { dagRunFailureDetails, type DagRunFailureDetails, type DagRunResult } from '../../workflows/dag-messages.js';
import { formatInstant, MS_PER_UNIT } from '../../core/time.js';
import { isolatedConfig, startStubDagWorker, type StubDagWorker } from '../support/dag-worker.js';

const DAG = 'example_diamond';
const FAILING_TASK = 'transform_a';

interface Received {
  path: string;
  body: Record<string, unknown>;
}

let receiver: Server;
let receiverUrl: string;
const received: Received[] = [];

function listen(server: Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}

before(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
      res.writeHead(req.url === '/pagerduty' ? 202 : 200, { 'content-type': 'application/json' }).end('{"status":"success"}');
    });
  });
  receiverUrl = await listen(receiver);
});

after(async () => {
  await new Promise((resolve) => receiver.close(resolve));
});

async function unusedPortUrl(): Promise<string> {
  const s = createServer();
  const url = await listen(s);
  await new Promise((resolve) => s.close(resolve));
  return url;
}

/** A worker whose FAILING_TASK always fails and whose alerts go to `baseUrl`; returns log lines too. */
async function alertingWorker(name: string, baseUrl: string): Promise<{ worker: StubDagWorker; ctx: OpsContext; logs: string[] }> {
  const config = isolatedConfig(name, { SEGFLOW_ALERT_PAGERDUTY_ROUTING_KEY: 'R0UT1NGKEY' });
  const logs: string[] = [];
  const logger = createLogger({ level: 'info', name: 'alerts' }, { write: (line: string) => void logs.push(line) });
  const alerts = createAlertActivities({
    logger,
    webhookUrls: [`${baseUrl}/webhook`],
    slackWebhookUrl: `${baseUrl}/slack`,
    pagerDuty: { routingKey: 'R0UT1NGKEY', url: `${baseUrl}/pagerduty`, minSeverity: 'error' },
    uiBaseUrl: config.temporal.uiUrl,
    retryDelaysMs: [50, 100],
  });
  const worker = await startStubDagWorker(config, {
    ...alerts,
    async exampleTask(input: DagTaskInput) {
      if (input.taskId === FAILING_TASK) throw new Error(`${FAILING_TASK}: warehouse said no`);
      return { taskId: input.taskId };
    },
  });
  return { worker, ctx: { client: worker.client, config }, logs };
}

async function runToFailure(
  ctx: OpsContext,
  start: string,
): Promise<{ workflowId: string; runId: string; details: DagRunFailureDetails | undefined }> {
  const started = await startDagRun(ctx, DAG, { start, end: formatInstant(Date.parse(start) + MS_PER_UNIT.h) });
  const details = await ctx.client.workflow
    .getHandle(started.workflowId)
    .result()
    .then(
      () => undefined,
      (err: unknown) => dagRunFailureDetails(err),
    );
  return { ...started, details };
}

const comparable = (d: DagRunFailureDetails | undefined) => ({
  failedTasks: d?.failedTasks,
  tasks: d?.tasks.map((t) => [t.taskId, t.state, t.attempts, t.error]),
});

let firstDetails: DagRunFailureDetails | undefined;

test('a task that always fails raises exactly one alert per channel, with DAG, task, interval and a UI link', async () => {
  const { worker, ctx } = await alertingWorker('alerting', receiverUrl);
  try {
    const start = '2002-03-04T05:00:00Z';
    const run = await runToFailure(ctx, start);
    firstDetails = run.details;
    assert.deepEqual(run.details?.failedTasks, [FAILING_TASK]);
    // Retries of the task (2 attempts) and delivery retries must not multiply alerts.
    await new Promise((r) => setTimeout(r, 1_000));
    const byPath = (p: string) => received.filter((r) => r.path === p);
    assert.equal(byPath('/webhook').length, 1);
    assert.equal(byPath('/slack').length, 1);
    assert.equal(byPath('/pagerduty').length, 1);

    const webhook = byPath('/webhook')[0]!.body as unknown as AlertWebhookBody;
    const uiLink = `${ctx.config.temporal.uiUrl}/namespaces/default/workflows/${encodeURIComponent(run.workflowId)}/${run.runId}/history`;
    assert.equal(webhook.dagId, DAG);
    assert.deepEqual(webhook.taskIds, [FAILING_TASK]);
    assert.deepEqual(webhook.interval, { start, end: '2002-03-04T06:00:00Z' });
    assert.equal(webhook.severity, 'error');
    assert.equal(webhook.dedupKey, `dag_run_failed/${DAG}/${FAILING_TASK}/${start}`);
    assert.match(webhook.message, /transform_a failed after 2 attempts: transform_a: warehouse said no/);
    assert.deepEqual(webhook.links, [{ label: 'Temporal UI', url: uiLink }]);
    assert.match(webhook.text, new RegExp(uiLink.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));

    const slack = byPath('/slack')[0]!.body as { text: string; blocks: unknown[] };
    assert.match(slack.text, /\[error\] DAG example_diamond failed for 2002-03-04T05:00:00Z\.\.2002-03-04T06:00:00Z: transform_a/);
    assert.ok(JSON.stringify(slack.blocks).includes(uiLink));

    const pd = byPath('/pagerduty')[0]!.body as {
      routing_key: string;
      event_action: string;
      dedup_key: string;
      payload: { severity: string; component: string; group: string };
      links: { href: string }[];
    };
    assert.equal(pd.routing_key, 'R0UT1NGKEY');
    assert.equal(pd.event_action, 'trigger');
    assert.equal(pd.dedup_key, webhook.dedupKey);
    assert.equal(pd.payload.severity, 'error');
    assert.equal(pd.payload.component, DAG);
    assert.equal(pd.payload.group, FAILING_TASK);
    assert.equal(pd.links[0]?.href, uiLink);
  } finally {
    await worker.close();
  }
});

test('with the alert receiver down the run ends the same way and the failed delivery is logged', async () => {
  const { worker, ctx, logs } = await alertingWorker('alerting-down', await unusedPortUrl());
  try {
    const before = received.length;
    const run = await runToFailure(ctx, '2002-03-04T07:00:00Z');
    assert.deepEqual(comparable(run.details), comparable(firstDetails), 'same result as with a working receiver');
    assert.equal(received.length, before);
    const failures = logs
      .map((l) => JSON.parse(l) as { msg: string; channel?: string; attempts?: number; error?: string })
      .filter((l) => l.msg === 'alert delivery failed; giving up on this channel');
    assert.deepEqual(failures.map((f) => f.channel?.split(' ')[0]).sort(), ['pagerduty', 'slack', 'webhook#1']);
    for (const f of failures) {
      assert.equal(f.attempts, 3, 'retried before giving up');
      assert.match(f.error ?? '', /ECONNREFUSED|fetch failed/);
    }
    // The routing key never reaches a log line.
    assert.ok(!logs.some((l) => l.includes('R0UT1NGKEY')));

    // And a run that succeeds is not affected by a dead channel at all.
    const ok = await startDagRun(ctx, 'example_fanout', { start: '2002-03-04T07:00:00Z', end: '2002-03-04T08:00:00Z' });
    const result = (await ctx.client.workflow.getHandle(ok.workflowId).result()) as DagRunResult;
    assert.ok(result.tasks.every((t) => t.state === 'succeeded'));
  } finally {
    await worker.close();
  }
});
