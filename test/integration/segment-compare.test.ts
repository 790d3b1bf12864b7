/**
 * `npm run segment -- --compare` on the demo personas loaded into the local BigQuery emulator:
 * the command itself (a child process), as text and as --json, prints one row per algorithm.
 * And the nightly run with `SEGFLOW_SEGMENT_ALGORITHM=hierarchical` through the same command.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { PROJECT_ROOT } from '../../core/config.js';
import { COMPARED_ALGORITHMS } from '../../core/segmentation/compare.js';
import { adjustedRandIndex } from '../../core/segmentation/agreement.js';
import { modelVersionFor } from '../../core/segmentation/model.js';
import { readSegmentationRun } from '../../stores/model-registry.js';
import { createGcpClients } from '../../stores/clients.js';
import { COMPARE_COLUMNS } from '../../scripts/lib/segment-compare.js';
import { dropFeatureTarget, loadFeatureTable, personaPopulation } from '../support/segmentation-fixtures.js';
import { testConfig } from '../support/stack.js';

const run = promisify(execFile);
const id = randomUUID().slice(0, 8);
const dataset = `marts_cmp_${id}`;
const bucket = `segflow-test-cmp-${id}`;
const env = { SEGFLOW_DATASET_MARTS: dataset, SEGFLOW_LAKE_BUCKET: bucket, SEGFLOW_SEGMENT_K_MAX: '8' };
const config = testConfig('segment-compare', env);
const personas = personaPopulation(400, 2026, { asOf: new Date('2026-11-25T00:00:00Z'), eventsPerCustomer: 200 });

before(async () => {
  await loadFeatureTable(createGcpClients(config), { dataset, bucket }, personas.rows);
});

after(async () => {
  await dropFeatureTarget(createGcpClients(config), { dataset, bucket });
});

const segmentCommand = (args: string[], extra: Record<string, string> = {}) =>
  run(process.execPath, ['--import', 'tsx', 'scripts/segment.ts', ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env, LOG_LEVEL: 'error', ...extra },
    maxBuffer: 16 * 1024 * 1024,
  });
const segment = (args: string[]) => segmentCommand(['--compare', ...args]);

interface JsonReport {
  algorithm: string;
  clusters: number;
  sizes: number[];
  noise_share: number;
  silhouette: number | null;
  davies_bouldin: number | null;
  calinski_harabasz: number | null;
  stability: number | null;
}

test('--compare --json: the three algorithms on the personas, K-Means and Ward find the five personas', { timeout: 600_000 }, async () => {
  const { stdout } = await segment(['--json']);
  const out = JSON.parse(stdout) as {
    rows: number;
    population: number;
    reports: JsonReport[];
    recommendation: { algorithm: string; reason: string };
  };
  assert.equal(out.population, personas.rows.length);
  assert.equal(out.rows, personas.rows.length);
  assert.deepEqual(
    out.reports.map((r) => r.algorithm),
    [...COMPARED_ALGORITHMS],
  );
  for (const r of out.reports) {
    assert.equal(r.sizes.reduce((a, b) => a + b, 0) + Math.round(r.noise_share * out.rows), out.rows, r.algorithm);
    assert.ok(r.stability !== null && r.silhouette !== null, `${r.algorithm}: ${JSON.stringify(r)}`);
  }
  for (const algorithm of ['kmeans', 'hierarchical']) {
    const r = out.reports.find((x) => x.algorithm === algorithm)!;
    assert.equal(r.clusters, personas.personas.length, `${algorithm}: ${JSON.stringify(r)}`);
    assert.equal(r.noise_share, 0);
  }
  assert.ok(COMPARED_ALGORITHMS.includes(out.recommendation.algorithm as never), out.recommendation.algorithm);
  assert.ok(out.recommendation.reason.length > 0);
});

test('--compare prints the table: one row per algorithm under the header, and the recommendation', { timeout: 600_000 }, async () => {
  const { stdout } = await segment(['--sample', '300']);
  const lines = stdout.split('\n');
  assert.match(lines[0]!, new RegExp(`^300 of ${personas.rows.length} customers, \\d+ prepared features$`));
  const header = lines.findIndex((l) => l.trim().startsWith('algorithm'));
  assert.ok(header > 0, stdout);
  for (const column of COMPARE_COLUMNS) assert.ok(lines[header]!.includes(column), `column ${column} in ${lines[header]}`);
  const rows = lines.slice(header + 1, header + 4).map((l) => l.trim().split(/\s{2,}/));
  assert.deepEqual(
    rows.map((r) => r[0]),
    [...COMPARED_ALGORITHMS],
    stdout,
  );
  for (const r of rows) assert.equal(r.length, COMPARE_COLUMNS.length, `${r.join(' | ')}`);
  assert.match(stdout, /\nrecommended: (kmeans|hierarchical|dbscan): .+/);
});

test('the nightly run with algorithm hierarchical: the artifact says so, k = 5, ARI >= 0.9 in BigQuery', { timeout: 600_000 }, async () => {
  const end = '2026-11-26T02:00:00Z';
  await segmentCommand(['--interval-end', end], {
    SEGFLOW_SEGMENT_ALGORITHM: 'hierarchical',
    TEMPORAL_TASK_QUEUE: config.temporal.taskQueue,
    SEGFLOW_METRICS_PORT: '0',
  });
  const clients = createGcpClients(config);
  const version = modelVersionFor(end);
  const result = await readSegmentationRun({ ...clients, config }, version);
  assert.ok(result.model, 'model artifact written');
  assert.equal(result.model.training.algorithm, 'hierarchical');
  assert.equal(result.model.k_selection.chosen_k, personas.personas.length, JSON.stringify(result.model.k_selection.candidates));
  const [rows] = await clients.bigquery.query({
    query: `SELECT customer_id, segment_id FROM \`${config.gcp.projectId}.${dataset}.customer_segments\` WHERE model_version = @v`,
    params: { v: version },
    types: { v: 'STRING' },
  });
  const assigned = new Map((rows as { customer_id: string; segment_id: number }[]).map((r) => [r.customer_id, Number(r.segment_id)]));
  assert.equal(assigned.size, personas.rows.length);
  const ari = adjustedRandIndex(
    personas.truth,
    personas.rows.map((r) => assigned.get(r.customer_id)!),
  );
  assert.ok(ari >= 0.9, `ARI against the personas ${ari}`);
});
