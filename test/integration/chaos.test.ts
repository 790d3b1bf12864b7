/**
 * The short form of `npm run test:chaos`, in CI on every change: a few thousand events
 * through ingestion, the real-time path and the hourly pipeline on a stack of the run's
 * own, with about 10% faults on GCS, BigQuery and Firestore, a worker SIGKILLed during
 * ingestion and another during the real-time path, one Temporal dev server restart and one
 * Pub/Sub outage. The invariants are asserted from the runner's JSON summary; its exit
 * status must agree with them.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../../core/config.js';

const RUNNER = path.join('chaos', 'run.ts');

interface ChaosSummary {
  ok: boolean;
  violations: Array<{ invariant: string; message: string }>;
  faults: { byKind: Record<string, number> };
  disruptions: { workerKills: number; temporalRestarts: number; pubsubOutages: number };
  events: { validDistinct: number; malformed: number; duplicatePublishes: number; hostile: number };
  warehouse: {
    stagedDistinct: number;
    stagedRows: number;
    lost: number;
    unexpected: number;
    duplicatedInStaging: number;
    duplicatesSuppressed: number;
    hostileAltered: number;
  };
  quarantine: { distinctMalformed: number; missing: number; wrongReason: number; unexpected: number; accepted: number };
  dags: { intervals: number; intervalsDone: number; failed: number; alerts: number };
  profiles: { checked: number; mismatched: number };
  realtimeProfiles: { checked: number; mismatched: number; frequencyMismatches: number };
  webhooks: { distinctDeliveries: number; changesRecorded: number; brokenChains: number; badSignatures: number };
}

test(
  'chaos (short): nothing lost, nothing duplicated under faults, kills, a Temporal restart and a Pub/Sub outage',
  { timeout: 420_000 },
  async () => {
    const json = path.join(os.tmpdir(), `segflow-chaos-test-${process.pid}.json`);
    rmSync(json, { force: true });
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, ['--import', 'tsx', RUNNER, '--short', '--json', json, '--port-base', '27500'], {
      cwd: PROJECT_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    // The runner stops its own stack on SIGTERM; make sure it gets one if this test is cut short.
    const stop = () => child.kill('SIGTERM');
    process.once('exit', stop);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    process.off('exit', stop);

    const tail = output.split('\n').slice(-60).join('\n');
    assert.ok(existsSync(json), `the runner wrote no summary (exit ${code}):\n${tail}`);
    const s = JSON.parse(readFileSync(json, 'utf8')) as ChaosSummary;
    rmSync(json, { force: true });
    assert.deepEqual(s.violations, [], tail);
    assert.equal(code, 0, `exit status agrees with the summary:\n${tail}`);

    // The disruptions really happened.
    assert.ok(s.disruptions.workerKills >= 2, 'workers were SIGKILLed (in ingestion and in the real-time path)');
    assert.equal(s.disruptions.temporalRestarts, 1);
    assert.equal(s.disruptions.pubsubOutages, 1);
    const faults = (prefix: string) =>
      Object.entries(s.faults.byKind)
        .filter(([k]) => k.startsWith(prefix))
        .reduce((n, [, v]) => n + v, 0);
    assert.ok(faults('gcs.') > 0, 'GCS faults injected');
    assert.ok(faults('bigquery.') > 0, 'BigQuery faults injected');

    // Every valid event exactly once, every malformed one quarantined with its reason.
    assert.equal(s.warehouse.lost, 0);
    assert.equal(s.warehouse.unexpected, 0);
    assert.equal(s.warehouse.stagedDistinct, s.events.validDistinct);
    assert.equal(s.warehouse.stagedRows, s.events.validDistinct);
    assert.ok(s.warehouse.duplicatesSuppressed >= s.events.duplicatePublishes, 'duplicate publishes reached raw and were collapsed');
    assert.equal(s.warehouse.hostileAltered, 0);
    assert.ok(s.events.hostile > 0);
    assert.equal(s.quarantine.distinctMalformed, s.events.malformed);
    assert.deepEqual([s.quarantine.missing, s.quarantine.wrongReason, s.quarantine.unexpected, s.quarantine.accepted], [0, 0, 0, 0]);

    // Pipelines finished (or failed loudly and were rerun); profiles and webhooks agree.
    assert.ok(s.dags.intervals >= 1);
    assert.equal(s.dags.intervalsDone, s.dags.intervals);
    assert.equal(s.dags.alerts, s.dags.failed);
    assert.ok(s.profiles.checked > 0);
    assert.equal(s.profiles.mismatched, 0);
    assert.ok(s.realtimeProfiles.checked > 0);
    assert.equal(s.realtimeProfiles.frequencyMismatches, 0, 'each real-time purchase counted once');
    assert.ok(s.webhooks.changesRecorded > 0);
    assert.equal(s.webhooks.distinctDeliveries, s.webhooks.changesRecorded);
    assert.equal(s.webhooks.brokenChains, 0);
    assert.equal(s.webhooks.badSignatures, 0);
  },
);

test('chaos runner: --help, and a bad option exits 2 naming it', () => {
  const run = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', RUNNER, ...args], { cwd: PROJECT_ROOT, encoding: 'utf8' });
  const help = run(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--fault-rate <share>/);
  assert.match(help.stdout, /LOST|lost/);
  const bad = run(['--fault-rate', '2']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--fault-rate.*expected a share between 0 and 1/);
});
