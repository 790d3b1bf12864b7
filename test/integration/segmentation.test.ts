/**
 * Nightly segmentation on the real local stack (BigQuery emulator, fake GCS, Temporal dev server):
 * the nightly_segmentation DAG on demo-persona customers, SQL vs TypeScript assignment, exact
 * stability figures on a hand-built case, and the stability alert.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { createGcpClients } from '../../stores/clients.js';
import { createSegmentationActivities } from '../../activities/segmentation/index.js';
import {
  CURRENT_MODEL_OBJECT,
  CUSTOMER_SEGMENTS_SCHEMA,
  loadCurrentModel,
  modelObjectName,
  readSegmentationRun,
  runObjectName,
} from '../../stores/model-registry.js';
import type { Alert } from '../../core/alerts.js';
import { createLogger } from '../../core/logger.js';
import {
  DEFAULT_SEGMENT_FEATURES,
  adjustedRandIndex,
  assignCustomer,
  assignmentSql,
  parseSegmentModel,
  trainSegmentModel,
  type SegmentModel,
} from '../../core/segmentation/index.js';
import { NIGHTLY_SEGMENTATION_DAG } from '../../core/dag-ids.js';
import { modelVersionFor } from '../../core/segmentation/model.js';
import { dagRunWorkflowId } from '../../workflows/dag-messages.js';
import { formatInstant } from '../../core/time.js';
import {
  dropFeatureTarget,
  loadFeatureTable,
  personaPopulation,
  syntheticFeatureRows,
  type FeatureRecord,
} from '../support/segmentation-fixtures.js';
import { startHarness, testConfig, type IntegrationHarness } from '../support/stack.js';

const id = randomUUID().slice(0, 8);
const dataset = `marts_seg_${id}`;
const bucket = `segflow-test-seg-${id}`;
const received: Alert[] = [];
let server: Server;
let harness: IntegrationHarness;

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      received.push(JSON.parse(body) as Alert);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  harness = await startHarness('segmentation', {
    env: {
      SEGFLOW_DATASET_MARTS: dataset,
      SEGFLOW_LAKE_BUCKET: bucket,
      SEGFLOW_ALERT_WEBHOOK_URLS: `http://127.0.0.1:${port}/alerts`,
      SEGFLOW_SEGMENT_K_MAX: '8',
      // Fewer than the customers: exercises the FARM_FINGERPRINT sample and paging.
      SEGFLOW_SEGMENT_SAMPLE_SIZE: '450',
      SEGFLOW_SEGMENT_PAGE_SIZE: '200',
    },
  });
});

after(async () => {
  await harness?.close();
  server?.close();
  await dropFeatureTarget(createGcpClients(harness.config), { dataset, bucket });
});

const day = (d: number) => ({
  start: formatInstant(Date.UTC(2026, 10, 24 + d)),
  end: formatInstant(Date.UTC(2026, 10, 25 + d)),
});

async function runNightly(interval: { start: string; end: string }): Promise<void> {
  await harness.client.workflow.execute('runDag', {
    taskQueue: harness.config.temporal.taskQueue,
    workflowId: `${dagRunWorkflowId(NIGHTLY_SEGMENTATION_DAG, interval.start)}-${id}`,
    args: [{ dagId: NIGHTLY_SEGMENTATION_DAG, interval }],
  });
}

async function assignments(version: string): Promise<Map<string, number>> {
  const { bigquery } = createGcpClients(harness.config);
  const [rows] = await bigquery.query({
    query: `SELECT customer_id, segment_id FROM \`${harness.config.gcp.projectId}.${dataset}.customer_segments\` WHERE model_version = @v`,
    params: { v: version },
    types: { v: 'STRING' },
  });
  return new Map((rows as { customer_id: string; segment_id: number }[]).map((r) => [r.customer_id, Number(r.segment_id)]));
}

test(
  'nightly_segmentation recovers the demo personas, keeps segment ids across nights, and alerts on a shift only',
  { timeout: 900_000 },
  async () => {
    const clients = createGcpClients(harness.config);
    const asOf = new Date('2026-11-25T00:00:00Z');
    const pop = personaPopulation(700, 2026, { asOf, eventsPerCustomer: 200 });
    await loadFeatureTable(clients, { dataset, bucket }, pop.rows);

    // Night 1: the first model.
    await runNightly(day(1));
    const v1 = modelVersionFor(day(1).end);
    const run1 = await readSegmentationRun({ ...clients, config: harness.config }, v1);
    assert.ok(run1.model, 'model artifact written');
    assert.equal(run1.model.k_selection.chosen_k, pop.personas.length, JSON.stringify(run1.model.k_selection.candidates));
    const a1 = await assignments(v1);
    assert.equal(a1.size, pop.rows.length, 'every customer assigned in BigQuery');
    const counted = new Map<number, number>();
    for (const id of a1.values()) counted.set(id, (counted.get(id) ?? 0) + 1);
    assert.deepEqual(
      new Map(run1.sizes.map((s) => [s.segment_id, s.customers])),
      counted,
      'segment sizes read back from marts.customer_segments',
    );
    const ari = adjustedRandIndex(
      pop.truth,
      pop.rows.map((r) => a1.get(r.customer_id)!),
    );
    assert.ok(ari >= 0.9, `ARI against the personas ${ari}`);
    assert.deepEqual(run1.current, { version: v1, uri: `gs://${bucket}/${modelObjectName(v1)}` });
    assert.equal((await loadCurrentModel(clients.storage, bucket))?.version, v1);
    assert.equal(run1.stability?.decisionName, 'promote');
    assert.equal(received.length, 0);
    const [registry] = await clients.bigquery.query({
      query: `SELECT version, k, is_current, promoted_at IS NOT NULL AS promoted FROM \`${harness.config.gcp.projectId}.${dataset}.segment_models\``,
    });
    assert.deepEqual(registry, [{ version: v1, k: pop.personas.length, is_current: true, promoted: true }]);
    // Real-time (TypeScript) assignment with the promoted model gives the same segment as BigQuery.
    const model1 = (await loadCurrentModel(clients.storage, bucket))!;
    for (const row of pop.rows)
      assert.equal(assignCustomer(model1, row as Record<string, number | null>).segmentId, a1.get(row.customer_id));

    // Night 2: unchanged population -> same segments, same ids, no alert.
    await runNightly(day(2));
    const v2 = modelVersionFor(day(2).end);
    const run2 = await readSegmentationRun({ ...clients, config: harness.config }, v2);
    const f2 = run2.stability?.figures;
    assert.ok(f2, JSON.stringify(run2.stability));
    assert.equal(run2.stability?.previousVersion, v1);
    assert.ok(f2.changed_share <= 0.02, `changed share ${f2.changed_share}`);
    assert.ok(f2.adjusted_rand_index >= 0.95, `ARI ${f2.adjusted_rand_index}`);
    assert.deepEqual(run2.stability?.breaches, []);
    assert.equal(run2.stability?.decisionName, 'promote');
    assert.equal(run2.current?.version, v2);
    assert.equal(received.length, 0, 'no alert on an unchanged population');
    assert.deepEqual(
      run2.model!.segments.map((s) => [s.id, s.label]).sort(),
      run1.model.segments.map((s) => [s.id, s.label]).sort(),
      'segments keep their ids and labels',
    );

    // Night 3: a shift -- 40% of the customers now behave like someone else entirely.
    const donors = pop.rows.filter((_, i) => pop.truth[i] === 0);
    const shifted = pop.rows.map((r, i): FeatureRecord => (i % 5 < 2 ? { ...donors[i % donors.length]!, customer_id: r.customer_id } : r));
    await loadFeatureTable(clients, { dataset, bucket }, shifted);
    await runNightly(day(3));
    const v3 = modelVersionFor(day(3).end);
    const run3 = await readSegmentationRun({ ...clients, config: harness.config }, v3);
    assert.equal(run3.stability?.previousVersion, v2);
    assert.ok(run3.stability!.breaches.length > 0, JSON.stringify(run3.stability?.figures));
    assert.equal(run3.stability?.decisionName, 'promote_with_alert');
    assert.equal(received.length, 1, 'one alert for the shift');
    assert.equal(received[0]!.kind, 'data_anomaly');
    assert.match(received[0]!.summary, new RegExp(v3));
    assert.equal(run3.current?.version, v3);
    const [stab] = await clients.bigquery.query({
      query: `SELECT model_version, previous_version, decision FROM \`${harness.config.gcp.projectId}.${dataset}.segment_stability\` ORDER BY model_version`,
    });
    assert.deepEqual(
      (stab as { decision: string }[]).map((r) => r.decision),
      ['promote', 'promote', 'promote_with_alert'],
    );
  },
);

// The emulator runs the assignment query row by row, so this is the slowest test of the file; set
// SEGFLOW_TEST_AGREEMENT_ROWS for fewer customers.
test(
  'SQL assignment in BigQuery and TypeScript assignment agree for every customer of 100,000 (numeric, categorical and ordinal features)',
  { timeout: 900_000 },
  async () => {
    const n = Number(process.env.SEGFLOW_TEST_AGREEMENT_ROWS ?? 100_000);
    const clients = createGcpClients(harness.config);
    const rows = syntheticFeatureRows(n, 77, new Date('2026-11-25T00:00:00Z'));
    const table = 'agreement_features';
    let started = Date.now();
    await loadFeatureTable(clients, { dataset, bucket, table }, rows);
    const loadMs = Date.now() - started;
    const model = trainSegmentModel(
      rows.slice(0, 2000) as Record<string, number | null>[],
      { features: DEFAULT_SEGMENT_FEATURES, kMin: 6, kMax: 6, seed: 9, silhouetteSampleSize: 200 },
      {
        version: 'v20261125T000000Z',
        createdAt: '2026-11-25T00:00:00Z',
      },
    );
    // The default features are numeric, categorical (one-hot with `other`) and ordinal: every kind is on the test.
    assert.deepEqual(new Set(model.preparation.features.map((f) => f.kind ?? 'numeric')), new Set(['numeric', 'onehot', 'ordinal']));
    const q = assignmentSql(model, { sourceTable: `${dataset}.${table}` });
    started = Date.now();
    const [out] = await clients.bigquery.query({ query: q.sql, params: q.params, types: q.types });
    const queryMs = Date.now() - started;
    assert.equal(out.length, n);
    const byId = new Map(rows.map((r) => [r.customer_id, r]));
    let disagreements = 0;
    let lastBit = 0;
    const seen = new Set<string>();
    assert.ok(model.hierarchy && model.hierarchy.parents.length >= 2, 'the model has parent segments');
    const parentsSeen = new Set<number>();
    type Out = { customer_id: string; segment_id: number; segment_label: string; parent_segment: number; distance: number; margin: number };
    for (const o of out as Out[]) {
      seen.add(o.customer_id);
      const ts = assignCustomer(model, byId.get(o.customer_id) as Record<string, number | null>);
      if (ts.segmentId !== o.segment_id || ts.label !== o.segment_label || ts.parent?.id !== o.parent_segment) disagreements++;
      parentsSeen.add(o.parent_segment);
      // LN comes from each engine's libm (log-scaled features): distances may differ in the last bit, never more.
      if (ts.distance !== o.distance) lastBit++;
      assert.ok(
        Math.abs(ts.distance - o.distance) <= 1e-14 * Math.max(1, ts.distance),
        `${o.customer_id}: ${ts.distance} vs ${o.distance}`,
      );
      assert.ok(Math.abs(ts.margin! - o.margin) <= 1e-13, `${o.customer_id}: margin ${ts.margin} vs ${o.margin}`);
    }
    assert.equal(seen.size, n, 'every customer once');
    assert.equal(disagreements, 0);
    assert.equal(parentsSeen.size, model.hierarchy.parents.length, 'every parent segment has customers');
    console.log(
      `# SQL vs TS agreement: ${n} customers, ${disagreements} segment or parent disagreements; ${lastBit} distances differ in the last bit (LN); ` +
        `load ${loadMs} ms, emulator query+fetch ${queryMs} ms`,
    );
  },
);

test('SQL and TypeScript break exact ties the same way: the lowest centroid index wins', async () => {
  const clients = createGcpClients(harness.config);
  // One feature, monetary in [0, 8] -> prepared monetary / 8; every number below is a dyadic rational, so
  // each distance is exact in both engines and the ties are real ties.
  const centroids = [[0.25], [0.75], [0.75], [0.125]];
  const model = parseSegmentModel({
    version: 'v20261125T000000Z',
    created_at: '2026-11-25T00:00:00Z',
    features: [{ name: 'monetary', weight: 1 }],
    preparation: { features: [{ name: 'monetary', weight: 1, log: false, fill: 4, min: 0, max: 8, missing_share: 0 }], training_rows: 10 },
    centroids,
    segments: centroids.map((c, i) => ({
      id: 10 + i,
      label: `s${i}`,
      size: 1,
      share: 0.25,
      centroid: { monetary: c[0]! * 8 },
      traits: [],
    })),
    k_selection: { chosen_k: 4, elbow_k: null, chosen_by: 'fixed', candidates: [{ k: 4, inertia: 0, silhouette: 0.5, min_share: 0.25 }] },
    metrics: { inertia: 0, silhouette: 0.5 },
    training: { sample_size: 10, seed: 1, n_init: 1, iterations: 1, converged: true },
  });
  const cases: { monetary: number | null; segment: number; margin: number }[] = [
    { monetary: 4, segment: 10, margin: 0 }, // 0.5: centroids 0, 1 and 2 tie
    { monetary: 100, segment: 11, margin: 0 }, // clipped to 1: centroids 1 and 2 tie, 0 is farther
    { monetary: 1.5, segment: 10, margin: 0 }, // 0.1875: centroids 0 and 3 tie
    { monetary: null, segment: 10, margin: 0 }, // imputed 4, as the first
    { monetary: 0, segment: 13, margin: 0.046875 }, // no tie
  ];
  const rows = cases.map((c, i) => ({ customer_id: `tie-${i}`, monetary: c.monetary }));
  await loadFeatureTable(clients, { dataset, bucket, table: 'tie_features' }, rows);
  const q = assignmentSql(model, { sourceTable: `${dataset}.tie_features` });
  const [out] = await clients.bigquery.query({ query: q.sql, params: q.params, types: q.types });
  const sql = new Map((out as { customer_id: string; segment_id: number; margin: number }[]).map((o) => [o.customer_id, o]));
  cases.forEach((c, i) => {
    const ts = assignCustomer(model, { monetary: c.monetary });
    assert.deepEqual([ts.segmentId, ts.margin], [c.segment, c.margin], `TypeScript, case ${i}`);
    assert.deepEqual([sql.get(`tie-${i}`)?.segment_id, sql.get(`tie-${i}`)?.margin], [c.segment, c.margin], `SQL, case ${i}`);
  });
});

test('stability figures are exact on a hand-built case, and breaches raise the alert', async () => {
  const config = testConfig('segstab', {
    SEGFLOW_DATASET_MARTS: dataset,
    SEGFLOW_LAKE_BUCKET: bucket,
    SEGFLOW_SEGMENT_PROMOTION_POLICY: 'hold',
  });
  const clients = createGcpClients(config);
  const alerts: Alert[] = [];
  const acts = createSegmentationActivities({
    ...clients,
    config,
    logger: createLogger({ level: 'silent', name: 'segstab' }),
    raiseAlert: async (a) => void alerts.push(a),
  });
  // One feature x in [0, 10]; current centroids 1 and 9, candidate 1 and 8 (prepared 0.1/0.9 vs 0.1/0.8).
  const mk = (version: string, centroids: number[][]): SegmentModel =>
    parseSegmentModel({
      version,
      created_at: '2026-11-20T00:00:00Z',
      features: [{ name: 'x', weight: 1 }],
      preparation: { features: [{ name: 'x', weight: 1, log: false, fill: 5, min: 0, max: 10, missing_share: 0 }], training_rows: 10 },
      centroids,
      segments: centroids.map((c, i) => ({
        id: i,
        label: ['low', 'high'][i]!,
        size: 5,
        share: 0.5,
        centroid: { x: c[0]! * 10 },
        traits: [],
      })),
      k_selection: { chosen_k: 2, elbow_k: null, chosen_by: 'fixed', candidates: [{ k: 2, inertia: 0, silhouette: 0.5, min_share: 0.5 }] },
      metrics: { inertia: 0, silhouette: 0.5 },
      training: { sample_size: 10, seed: 1, n_init: 1, iterations: 1, converged: true },
    });
  const interval = { start: '2026-12-01T00:00:00Z', end: '2026-12-02T00:00:00Z' };
  const cur = 'v20261201T000000Z';
  const cand = modelVersionFor(interval.end);
  const bkt = clients.storage.bucket(bucket);
  if (!(await bkt.exists())[0]) await clients.storage.createBucket(bucket);
  await bkt.file(modelObjectName(cur)).save(JSON.stringify(mk(cur, [[0.1], [0.9]])));
  await bkt.file(runObjectName(cand, 'model')).save(JSON.stringify(mk(cand, [[0.1], [0.8]])));
  await bkt.file(CURRENT_MODEL_OBJECT).save(JSON.stringify({ version: cur, uri: `gs://${bucket}/${modelObjectName(cur)}` }));
  // 10 customers: current 5 + 5; candidate moves one from segment 0 to segment 1.
  const values = Array.from({ length: 10 }, (_, i) => ({ customer_id: `h${i}`, cur: i < 5 ? 0 : 1, cand: i < 4 ? 0 : 1 }));
  // Runs on its own too (e.g. --test-name-pattern): the DAG test may not have created the table.
  const segTable = clients.bigquery.dataset(dataset).table('customer_segments');
  if (!(await clients.bigquery.dataset(dataset).exists())[0]) await clients.bigquery.createDataset(dataset, { location: 'US' });
  if (!(await segTable.exists())[0]) await segTable.create({ schema: { fields: CUSTOMER_SEGMENTS_SCHEMA } });
  const rowsSql = values
    .flatMap((v) => [`('${v.customer_id}', '${cur}', ${v.cur}), `, `('${v.customer_id}', '${cand}', ${v.cand}), `])
    .join('')
    .replace(/, $/, '');
  await clients.bigquery.query({
    query: `INSERT INTO \`${config.gcp.projectId}.${dataset}.customer_segments\` (customer_id, model_version, segment_id, assigned_at)
            SELECT c, v, s, CURRENT_TIMESTAMP() FROM UNNEST([STRUCT<c STRING, v STRING, s INT64>${rowsSql}])`,
  });
  const result = await acts.segmentationStability({ dagId: NIGHTLY_SEGMENTATION_DAG, taskId: 'stability', interval });
  const f = result.figures!;
  assert.equal(f.customers, 10);
  assert.equal(f.changed_share, 0.1);
  // Contingency (0,0)=4 (0,1)=1 (1,1)=5: sum C(nij,2)=16, rows 20, cols 21, C(10,2)=45 -> (16-28/3)/(41/2-28/3) = 40/67.
  assert.equal(f.adjusted_rand_index, (16 - (20 * 21) / 45) / ((20 + 21) / 2 - (20 * 21) / 45));
  assert.ok(Math.abs(f.adjusted_rand_index - 40 / 67) < 1e-15);
  assert.deepEqual(
    f.centroid_drift.map((d) => d.id),
    [0, 1],
  );
  assert.equal(f.centroid_drift[0]!.distance, 0);
  assert.ok(Math.abs(f.max_centroid_drift - 0.1) < 1e-12);
  assert.deepEqual(
    f.size_shifts.map((s) => [s.id, s.current_share, s.candidate_share]),
    [
      [0, 0.5, 0.4],
      [1, 0.5, 0.6],
    ],
  );
  assert.deepEqual(result.breaches.map((b) => b.metric).sort(), ['adjusted_rand_index', 'max_size_shift']);
  assert.equal(result.decisionName, 'hold');
  assert.equal(alerts.length, 1);
  assert.match(alerts[0]!.summary, /held/);
  const promoted = await acts.segmentationPromote({ dagId: NIGHTLY_SEGMENTATION_DAG, taskId: 'promote', interval });
  assert.equal(promoted.promoted, false);
  assert.equal((await loadCurrentModel(clients.storage, bucket))?.version, cur, 'the held model does not replace the current one');
});

test('a model that fails a cohesion gate is held, with exactly one alert naming the gate and the figure', async () => {
  // Its own bucket: no current model there, so only the gate decides (the first model is gated too).
  const cohBucket = `${bucket}-coh`;
  const config = testConfig('segcoh', { SEGFLOW_DATASET_MARTS: dataset, SEGFLOW_LAKE_BUCKET: cohBucket });
  assert.equal(config.segmentation.promotionPolicy, 'promote_with_alert');
  const clients = createGcpClients(config);
  const alerts: Alert[] = [];
  const acts = createSegmentationActivities({
    ...clients,
    config,
    logger: createLogger({ level: 'silent', name: 'segcoh' }),
    raiseAlert: async (a) => void alerts.push(a),
  });
  const interval = { start: '2026-12-03T00:00:00Z', end: '2026-12-04T00:00:00Z' };
  const version = modelVersionFor(interval.end);
  const segment = (index: number, silhouette: number) => ({
    index,
    silhouette,
    mean_distance: 0.1,
    nearest_centroid_distance: 0.2,
    nearest_index: 1 - index,
  });
  const model = parseSegmentModel({
    version,
    created_at: '2026-12-04T00:00:00Z',
    features: [{ name: 'x', weight: 1 }],
    preparation: { features: [{ name: 'x', weight: 1, log: false, fill: 5, min: 0, max: 10, missing_share: 0 }], training_rows: 10 },
    centroids: [[0.4], [0.6]],
    segments: [0, 1].map((i) => ({ id: i, label: ['low', 'high'][i]!, size: 5, share: 0.5, centroid: { x: 4 + 2 * i }, traits: [] })),
    k_selection: { chosen_k: 2, elbow_k: null, chosen_by: 'fixed', candidates: [{ k: 2, inertia: 0, silhouette: 0.3, min_share: 0.5 }] },
    metrics: { inertia: 0, silhouette: 0.3 },
    cohesion: {
      silhouette: 0.3,
      davies_bouldin: 1,
      calinski_harabasz: 10,
      silhouette_rows: 10,
      rows: 10,
      segments: [segment(0, 0.65), segment(1, -0.05)],
    },
    training: { sample_size: 10, seed: 1, n_init: 1, iterations: 1, converged: true },
  });
  const bkt = clients.storage.bucket(cohBucket);
  if (!(await bkt.exists())[0]) await clients.storage.createBucket(cohBucket);
  await bkt.file(runObjectName(version, 'model')).save(JSON.stringify(model));
  const result = await acts.segmentationStability({ dagId: NIGHTLY_SEGMENTATION_DAG, taskId: 'stability', interval });
  assert.equal(result.decisionName, 'hold');
  assert.deepEqual(
    result.breaches.map((b) => b.metric),
    ['segment_silhouette'],
  );
  assert.equal(alerts.length, 1);
  assert.match(alerts[0]!.summary, /cohesion gate \(segment_silhouette\): held/);
  assert.match(alerts[0]!.message, /segment 1 "high" has mean silhouette -0\.050, below 0/);
  const promoted = await acts.segmentationPromote({ dagId: NIGHTLY_SEGMENTATION_DAG, taskId: 'promote', interval });
  assert.equal(promoted.promoted, false);
  assert.equal(await loadCurrentModel(clients.storage, cohBucket), null, 'the held model does not become current');
  // A rerun of the task reuses its result and raises no second alert.
  await acts.segmentationStability({ dagId: NIGHTLY_SEGMENTATION_DAG, taskId: 'stability', interval });
  assert.equal(alerts.length, 1);
});
