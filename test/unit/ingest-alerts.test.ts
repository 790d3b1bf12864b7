import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluateIngestHealth, type IngestAlertSettings, type IngestHealthState, type IngestSample } from '../../core/ingest-alerts.js';

const settings: IngestAlertSettings = { lagMs: 60_000, quarantineShare: 0.1, windowMs: 300_000, minMessages: 100 };
const context = { subscription: 'events-lake', workflow: { namespace: 'default', workflowId: 'ingest/events-lake', runId: 'run-1' } };
const T0 = Date.parse('2026-11-26T10:00:00Z');

/** Feeds samples in order; returns every alert raised and the final state. */
function run(samples: IngestSample[], s: IngestAlertSettings = settings, start: IngestHealthState = { window: [] }) {
  let state = start;
  const alerts = [];
  const recovered = [];
  for (const sample of samples) {
    const report = evaluateIngestHealth(state, sample, s, context);
    state = report.state;
    alerts.push(...report.alerts);
    recovered.push(...report.recovered);
  }
  return { state, alerts, recovered };
}

const batch = (i: number, pulled: number, quarantined: number, lagMs = 1_000, reasons?: Record<string, number>): IngestSample => ({
  at: T0 + i * 10_000,
  pulled,
  quarantined,
  lagMs,
  ...(reasons ? { reasons } : {}),
});

describe('ingestion alerts', () => {
  it('raise nothing for a normal stream', () => {
    const { alerts, state } = run(Array.from({ length: 50 }, (_, i) => batch(i, 1000, i % 10 === 0 ? 20 : 0)));
    assert.deepEqual(alerts, []);
    assert.equal(state.lagSince, undefined);
    assert.equal(state.quarantineSince, undefined);
  });

  it('raise one quarantine alert for a burst of malformed messages spanning many batches, with counts and reasons', () => {
    const samples = [
      batch(0, 1000, 0),
      ...Array.from({ length: 8 }, (_, i) => batch(i + 1, 500, 300, 1_000, { not_json: 200, unknown_type: 100 })),
    ];
    const { alerts, state } = run(samples);
    assert.equal(alerts.length, 1);
    const [alert] = alerts;
    assert.equal(alert!.kind, 'data_anomaly');
    assert.equal(alert!.severity, 'warning');
    assert.equal(alert!.dedupKey, 'data_anomaly/events-lake/quarantine_rate/2026-11-26T10:00:10.000Z');
    assert.deepEqual(alert!.workflow, context.workflow);
    assert.match(alert!.summary, /quarantined 20\.0% of 1500 messages in 5 min \(threshold 10\.0%\)/);
    assert.match(alert!.message, /reasons: not_json: 200, unknown_type: 100/);
    assert.equal(state.quarantineSince, '2026-11-26T10:00:10.000Z');
  });

  it('end the episode when the rate is back under the threshold, and alert again for the next one', () => {
    const burst = (from: number) => Array.from({ length: 3 }, (_, i) => batch(from + i, 5000, 4000));
    // 40 clean batches of 1000 (400 s) push the burst out of the 5-minute window; the second
    // burst (12,000 of 15,000) is then judged against the clean ones still in it (27,000).
    const clean = (from: number) => Array.from({ length: 40 }, (_, i) => batch(from + i, 1000, 0));
    const { alerts, recovered } = run([...burst(0), ...clean(3), ...burst(43)]);
    assert.equal(alerts.length, 2);
    assert.deepEqual(recovered, ['quarantine']);
    assert.notEqual(alerts[0]!.dedupKey, alerts[1]!.dedupKey);
  });

  it('judge the rate only on enough messages', () => {
    const { alerts } = run([batch(0, 10, 9), batch(1, 20, 15)]);
    assert.deepEqual(alerts, [], '24 of 30 quarantined, but 30 < minMessages');
  });

  it('raise one lag alert per episode, ignoring empty activities', () => {
    const samples = [
      batch(0, 1000, 0, 5_000),
      batch(1, 1000, 0, 90_000),
      batch(2, 1000, 0, 120_000),
      { at: T0 + 30_000, pulled: 0, quarantined: 0 },
      batch(4, 1000, 0, 100_000),
    ];
    const { alerts, state } = run(samples);
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]!.kind, 'ingestion_lag');
    assert.equal(alerts[0]!.severity, 'error');
    assert.match(alerts[0]!.summary, /Ingestion of events-lake is 90 s behind \(threshold 60 s\)/);
    assert.equal(alerts[0]!.dedupKey, 'ingestion_lag/events-lake/lag/2026-11-26T10:00:10.000Z');
    assert.equal(state.lagSince, '2026-11-26T10:00:10.000Z');

    const after = run([batch(5, 1000, 0, 2_000), batch(6, 1000, 0, 70_000)], settings, state);
    assert.deepEqual(after.recovered, ['lag']);
    assert.equal(after.alerts.length, 1, 'a new episode after recovery');
  });

  it('keep an open episode across continue-as-new (the state is carried)', () => {
    const first = run([batch(0, 500, 300), batch(1, 500, 300)]);
    assert.equal(first.alerts.length, 1);
    const carried = JSON.parse(JSON.stringify(first.state)) as IngestHealthState;
    const second = run([batch(2, 500, 300), batch(3, 500, 300)], settings, carried);
    assert.deepEqual(second.alerts, []);
  });

  it('keep only non-empty samples of the window in the carried state', () => {
    const { state } = run([batch(0, 1000, 0), { at: T0 + 10_000, pulled: 0, quarantined: 0 }, batch(2, 10, 0), batch(40, 5, 0)]);
    assert.deepEqual(
      state.window.map((s) => s.pulled),
      [5],
      'the empty one never, the old ones once out of the window',
    );
  });

  it('are off with a lag threshold of 0 and a share of 1', () => {
    const { alerts } = run([batch(0, 1000, 1000, 10 ** 9)], { ...settings, lagMs: 0, quarantineShare: 1 });
    assert.deepEqual(alerts, []);
  });
});
