import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../core/config.js';
import { scheduleDefinitions, scheduleOptions, specHash } from '../../schedules/definitions.js';
import {
  metricsPorts,
  metricsText,
  recordApiLatency,
  recordIngestBatch,
  recordReclassifyLatency,
  recordTaskDuration,
} from '../../workers/metrics.js';
import { intervalEndForNominalTime } from '../../workflows/scheduled-dag-run.js';

test('a fire a few minutes past the hour processes the whole previous hour; a nightly fire the previous UTC day', () => {
  assert.equal(new Date(intervalEndForNominalTime('hourly', Date.parse('2026-11-26T10:05:00Z'))).toISOString(), '2026-11-26T10:00:00.000Z');
  assert.equal(new Date(intervalEndForNominalTime('hourly', Date.parse('2026-11-26T10:00:00Z'))).toISOString(), '2026-11-26T10:00:00.000Z');
  assert.equal(new Date(intervalEndForNominalTime('daily', Date.parse('2026-11-26T01:00:00Z'))).toISOString(), '2026-11-26T00:00:00.000Z');
});

test('definitions follow the configuration: minute, nightly time and zone, prefix', () => {
  const config = parseConfig({
    SEGFLOW_HOURLY_MINUTE: '7',
    SEGFLOW_NIGHTLY_TIME: '03:30',
    SEGFLOW_NIGHTLY_TIMEZONE: 'Europe/Berlin',
    SEGFLOW_SCHEDULE_PREFIX: 'staging.',
  });
  const [hourly, nightly] = scheduleDefinitions(config);
  assert.equal(hourly?.scheduleId, 'staging.hourly_pipeline');
  assert.equal(hourly?.cron, '7 * * * *');
  assert.equal(hourly?.overlap, 'BUFFER_ONE');
  assert.equal(nightly?.cron, '30 3 * * *');
  assert.equal(nightly?.timezone, 'Europe/Berlin');
  assert.equal(nightly?.overlap, 'SKIP');
  const options = scheduleOptions(hourly!);
  assert.deepEqual(options.memo, { segflowManaged: { prefix: 'staging.', dagId: 'hourly_pipeline' } });
  assert.equal(options.action.workflowId, 'staging.schedule/hourly_pipeline');
  assert.throws(() => parseConfig({ SEGFLOW_NIGHTLY_TIME: '25:00' }), /SEGFLOW_NIGHTLY_TIME/);
});

test('the spec hash changes with what apply writes and only with that', () => {
  const [hourly] = scheduleDefinitions(parseConfig({}));
  assert.equal(specHash(hourly!), specHash({ ...hourly! }));
  assert.equal(specHash(hourly!), specHash({ ...hourly!, cron: ` ${hourly!.cron}  ` }), 'whitespace in a cron is not a change');
  assert.notEqual(specHash(hourly!), specHash({ ...hourly!, cron: '9 * * * *' }));
  assert.notEqual(specHash(hourly!), specHash({ ...hourly!, catchupWindow: '2h' }));
  assert.notEqual(specHash(hourly!), specHash({ ...hourly!, taskQueue: 'other' }));
});

test('segflow metrics: counters, lag, task durations and latencies in Prometheus text', async () => {
  recordIngestBatch({
    pulled: 10,
    written: 9,
    quarantined: 1,
    batches: 3,
    oldestPublishTime: '2026-11-26T10:00:00Z',
    finishedAt: '2026-11-26T10:00:02.500Z',
  });
  recordIngestBatch({ pulled: 0, written: 0, quarantined: 0, finishedAt: '2026-11-26T10:00:03Z' });
  recordTaskDuration('hourly_pipeline', 'load_raw', 1_500, 'succeeded');
  recordReclassifyLatency(120);
  recordApiLatency('/v1/customers/:id/profile', 200, 4);
  const text = await metricsText();
  assert.match(text, /^segflow_events_ingested_total 9$/m);
  assert.match(text, /^segflow_events_quarantined_total 1$/m);
  assert.match(text, /^segflow_ingest_batches_total 3$/m);
  assert.match(text, /^segflow_ingestion_lag_seconds 2\.5$/m);
  assert.match(text, /^segflow_dag_task_duration_seconds_count\{dag="hourly_pipeline",task="load_raw",state="succeeded"\} 1$/m);
  assert.match(text, /^segflow_reclassify_latency_seconds_count 1$/m);
  assert.match(text, /^segflow_api_request_duration_seconds_count\{route="\/v1\/customers\/:id\/profile",status="200"\} 1$/m);
  assert.deepEqual(metricsPorts({ metrics: { port: 9464 } }), { temporal: 9464, segflow: 9465 });
  assert.equal(metricsPorts({ metrics: { port: 0 } }), undefined);
});
