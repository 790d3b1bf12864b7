import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAlertActivities, pagerDutyBody, slackBody, type AlertLogger } from '../../activities/alerts.js';
import { dagRunFailedAlert, severityAtLeast, type Alert } from '../../core/alerts.js';
import { parseConfig } from '../../core/config.js';

const alert: Alert = dagRunFailedAlert({
  dagId: 'hourly_pipeline',
  interval: { start: '2026-11-26T09:00:00Z', end: '2026-11-26T10:00:00Z' },
  failedTasks: [{ taskId: 'stg_events', attempts: 3, error: 'table raw.events not found' }],
  workflow: { namespace: 'default', workflowId: 'hourly_pipeline/2026-11-26T09:00:00Z', runId: 'r1' },
  uiBaseUrl: 'http://ui:8233',
  occurredAt: '2026-11-26T10:07:00Z',
});

function recordingLogger() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const logger: AlertLogger = {
    error: (obj, msg) => void lines.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
    warn: (obj, msg) => void lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    info: (obj, msg) => void lines.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
  };
  return { logger, lines };
}

function fakeFetch(statuses: (number | Error)[]) {
  const calls: { url: string; body: unknown }[] = [];
  const impl = (async (url: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(url), body: JSON.parse(String(init?.body)) });
    const next = statuses.shift() ?? 200;
    if (next instanceof Error) throw next;
    return new Response('{}', { status: next });
  }) as typeof fetch;
  return { impl, calls };
}

test('the dedup key names DAG, task and interval; the UI link points at the run', () => {
  assert.equal(alert.dedupKey, 'dag_run_failed/hourly_pipeline/stg_events/2026-11-26T09:00:00Z');
  assert.equal(alert.links[0]?.url, 'http://ui:8233/namespaces/default/workflows/hourly_pipeline%2F2026-11-26T09%3A00%3A00Z/r1/history');
  assert.equal(alert.severity, 'error');
});

test('slack body: text for notifications, blocks with severity, DAG, task, interval, error and a button to the run', () => {
  const body = slackBody(alert);
  assert.equal(body.text, '[error] DAG hourly_pipeline failed for 2026-11-26T09:00:00Z..2026-11-26T10:00:00Z: stg_events');
  const json = JSON.stringify(body.blocks);
  for (const part of [
    '*DAG*\\nhourly_pipeline',
    '*Task*\\nstg_events',
    '2026-11-26T09:00:00Z .. 2026-11-26T10:00:00Z',
    'table raw.events not found',
    alert.links[0]!.url,
  ]) {
    assert.ok(json.includes(part), `missing ${part}`);
  }
});

test('pagerduty body: Events v2 trigger with routing key, the alert dedup key and mapped severity', () => {
  const body = pagerDutyBody({ ...alert, severity: 'critical' }, 'rk');
  assert.equal(body.routing_key, 'rk');
  assert.equal(body.event_action, 'trigger');
  assert.equal(body.dedup_key, alert.dedupKey);
  assert.equal(body.payload.severity, 'critical');
  assert.equal(body.payload.source, 'hourly_pipeline/2026-11-26T09:00:00Z');
  assert.equal(body.payload.component, 'hourly_pipeline');
  assert.equal(body.payload.group, 'stg_events');
  assert.deepEqual(body.links, [{ href: alert.links[0]!.url, text: 'Temporal UI' }]);
  assert.ok(severityAtLeast('critical', 'error') && severityAtLeast('error', 'error') && !severityAtLeast('warning', 'error'));
});

test('every channel gets its own body; pagerduty only at or above its minimum severity', async () => {
  const { logger } = recordingLogger();
  const fetch = fakeFetch([]);
  const { raiseAlert } = createAlertActivities({
    logger,
    webhookUrls: ['http://hook/a'],
    slackWebhookUrl: 'https://hooks.slack.test/services/T/B/secret',
    pagerDuty: { routingKey: 'rk', url: 'http://pd/v2/enqueue', minSeverity: 'error' },
    fetch: fetch.impl,
    retryDelaysMs: [],
  });
  const report = await raiseAlert(alert);
  assert.deepEqual(
    report.deliveries.map((d) => [d.channel, d.delivered]),
    [
      ['webhook#1 (hook)', true],
      ['slack (hooks.slack.test)', true],
      ['pagerduty (pd)', true],
    ],
  );
  assert.equal((fetch.calls[0]?.body as { dedupKey: string }).dedupKey, alert.dedupKey);
  assert.ok('blocks' in (fetch.calls[1]?.body as object));
  assert.equal((fetch.calls[2]?.body as { routing_key: string }).routing_key, 'rk');

  fetch.calls.length = 0;
  await raiseAlert({ ...alert, severity: 'warning' });
  assert.deepEqual(
    fetch.calls.map((c) => c.url),
    ['http://hook/a', 'https://hooks.slack.test/services/T/B/secret'],
  );
});

test('a broken channel is retried, logged without its URL, and never throws', async () => {
  const { logger, lines } = recordingLogger();
  const fetch = fakeFetch([503, new TypeError('fetch failed'), 500]);
  const { raiseAlert } = createAlertActivities({
    logger,
    webhookUrls: [],
    slackWebhookUrl: 'https://hooks.slack.test/services/T/B/secret',
    fetch: fetch.impl,
    retryDelaysMs: [1, 1],
  });
  const report = await raiseAlert(alert);
  assert.deepEqual(report.deliveries, [{ channel: 'slack (hooks.slack.test)', delivered: false, attempts: 3, error: 'HTTP 500' }]);
  assert.equal(fetch.calls.length, 3);
  assert.equal(lines.filter((l) => l.msg === 'alert delivery failed; retrying').length, 2);
  assert.equal(lines.filter((l) => l.msg === 'alert delivery failed; giving up on this channel').length, 1);
  assert.ok(!JSON.stringify(lines.filter((l) => l.msg.startsWith('alert delivery'))).includes('secret'));
});

test('a 4xx other than 408/429 is not retried', async () => {
  const { logger } = recordingLogger();
  const fetch = fakeFetch([400]);
  const { raiseAlert } = createAlertActivities({ logger, webhookUrls: ['http://hook/a'], fetch: fetch.impl, retryDelaysMs: [1, 1] });
  const report = await raiseAlert(alert);
  assert.equal(report.deliveries[0]?.attempts, 1);
});

test('alert channels are configured in core/config.ts', () => {
  const config = parseConfig({
    SEGFLOW_ALERT_WEBHOOK_URLS: 'http://a/1, http://b/2',
    SEGFLOW_ALERT_SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/x',
    SEGFLOW_ALERT_PAGERDUTY_ROUTING_KEY: 'abc',
  });
  assert.deepEqual(config.alerts, {
    webhookUrls: ['http://a/1', 'http://b/2'],
    slackWebhookUrl: 'https://hooks.slack.com/services/x',
    pagerDuty: { routingKey: 'abc', url: 'https://events.pagerduty.com/v2/enqueue', minSeverity: 'error' },
  });
  assert.deepEqual(parseConfig({}).alerts, { webhookUrls: [] });
  assert.throws(
    () => parseConfig({ SEGFLOW_ALERT_SLACK_WEBHOOK_URL: 'not a url', SEGFLOW_NIGHTLY_TIMEZONE: 'Mars/Olympus' }),
    /SEGFLOW_ALERT_SLACK_WEBHOOK_URL[\s\S]*SEGFLOW_NIGHTLY_TIMEZONE/,
  );
});
