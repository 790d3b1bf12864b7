/**
 * Model operations and segment health on the real local stack: two nights of the
 * nightly_segmentation DAG on demo personas, then
 * - the worker's metrics endpoint shows the current model's segment sizes as counted in
 *   marts.customer_segments;
 * - `ops models diff` reports as many changed customers (and webhook deliveries per subscriber
 *   filter) as a direct query of marts.customer_segments;
 * - `ops models promote` then `rollback` switch the model the API and the real-time path use within
 *   seconds, in this process that never restarts, and both switches are recorded.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { createFirestoreProfileStore } from '../../api/firestore-store.js';
import { createRegistrySegmentsSource } from '../../api/segments-store.js';
import { buildProfileApi } from '../../api/server.js';
import { createReclassifyActivities } from '../../activities/reclassify.js';
import { PROJECT_ROOT } from '../../core/config.js';
import type { PurchaseEvent } from '../../core/events.js';
import { createLogger } from '../../core/logger.js';
import { readPromotions } from '../../stores/model-registry.js';
import type { ModelDiff, PromotionResult } from '../../schedules/ops-models-lib.js';
import { purchaseEvent } from '../support/realtime-fixtures.js';
import { countSegments, startSegmentedStack, type SegmentedStack } from '../support/segments-stack.js';

const run = promisify(execFile);
const TOKEN = 'model-ops-token-0123456789';
let METRICS_PORT: number;

/** A free port whose next one is free too: the Temporal SDK's metrics there, segflow's on the next. */
async function freePortPair(): Promise<number> {
  const listen = (port: number) =>
    new Promise<Server | null>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(null));
      server.listen(port, '127.0.0.1', () => resolve(server));
    });
  for (;;) {
    const first = (await listen(0))!;
    const port = (first.address() as AddressInfo).port;
    const second = await listen(port + 1);
    await new Promise((r) => first.close(r));
    if (second !== null) {
      await new Promise((r) => second.close(r));
      return port;
    }
  }
}
const WEBHOOKS = JSON.stringify([
  { id: 'everything', url: 'http://127.0.0.1:9/all', secret: 'secret-everything-0123' },
  { id: 'into-one', url: 'http://127.0.0.1:9/one', secret: 'secret-into-one-012345', filter: { into: [1] } },
]);

let stack: SegmentedStack;
let app: ReturnType<typeof buildProfileApi>;
let base: string;

before(async () => {
  METRICS_PORT = await freePortPair();
  stack = await startSegmentedStack('modelops', {
    customers: 300,
    nights: 2,
    env: { SEGFLOW_METRICS_PORT: String(METRICS_PORT) },
  });
  const { config } = stack.harness;
  app = buildProfileApi({
    store: createFirestoreProfileStore({ firestore: stack.clients.firestore, config, logger: stack.harness.logger }),
    tokens: [TOKEN],
    logger: createLogger({ level: 'warn', name: 'test-model-ops' }),
    rateLimit: false,
    segments: createRegistrySegmentsSource({ bigquery: stack.clients.bigquery, storage: stack.clients.storage, config }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

after(async () => {
  await app?.close();
  await stack?.close();
});

async function api<T>(path: string): Promise<T> {
  const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200, `GET ${path}`);
  return (await res.json()) as T;
}

async function ops<T>(args: string[]): Promise<T> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'schedules/ops.ts', 'models', ...args, '--json'], {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      ...stack.env,
      SEGFLOW_WEBHOOKS: WEBHOOKS,
      LOG_LEVEL: 'error',
    },
  });
  return JSON.parse(stdout) as T;
}

async function currentServed(): Promise<string> {
  return (await api<{ model_version: string }>('/v1/segments')).model_version;
}

/** Polls until the API serves `version`; returns how long that took. */
async function servedWithin(version: string, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while ((await currentServed()) !== version) {
    assert.ok(Date.now() - t0 < timeoutMs, `the API serves ${version} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return Date.now() - t0;
}

test("the metrics endpoint shows the current model's segment sizes after the segmentation run", async () => {
  const current = await currentServed();
  const res = await fetch(`http://127.0.0.1:${METRICS_PORT + 1}/metrics`);
  assert.equal(res.status, 200);
  const text = await res.text();
  const sizes = new Map<number, number>();
  for (const m of text.matchAll(/^segflow_segment_customers\{([^}]*)\} (\S+)$/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    assert.equal(labels.model_version, current);
    sizes.set(Number(labels.segment_id), Number(m[2]));
  }
  assert.deepEqual(sizes, await countSegments(stack, current));
  for (const name of ['segflow_segment_share', 'segflow_model_silhouette', 'segflow_model_age_seconds', 'segflow_segment_changed_share']) {
    assert.match(text, new RegExp(`^${name}\\{`, 'm'), `${name} is exported`);
  }
});

test('ops models diff reports the changed customers and webhook deliveries a direct query finds', async () => {
  const [a, b] = stack.versions as [string, string];
  const diff = await ops<ModelDiff>(['diff', a, b]);
  const [rows] = await stack.clients.bigquery.query({
    query: `SELECT COUNTIF(x.segment_id != y.segment_id) AS changed, COUNTIF(x.segment_id != y.segment_id AND y.segment_id = 1) AS into_one
            FROM \`${stack.harness.config.gcp.projectId}.${stack.dataset}.customer_segments\` AS x
            JOIN \`${stack.harness.config.gcp.projectId}.${stack.dataset}.customer_segments\` AS y USING (customer_id)
            WHERE x.model_version = @a AND y.model_version = @b`,
    params: { a, b },
    types: { a: 'STRING', b: 'STRING' },
  });
  const direct = rows[0] as { changed: number; into_one: number };
  assert.equal(diff.changed, Number(direct.changed));
  assert.equal(
    diff.matrix.filter((c) => c.from_id !== c.to_id).reduce((s, c) => s + c.customers, 0),
    diff.changed,
  );
  assert.deepEqual(diff.deliveries, [
    { subscriber: 'everything', deliveries: Number(direct.changed) },
    { subscriber: 'into-one', deliveries: Number(direct.into_one) },
  ]);
  assert.equal(diff.compared, stack.population.rows.length);
});

test('promote then rollback switch the served model within seconds without a restart, and both are recorded', async () => {
  const { config, logger } = stack.harness;
  const before = await currentServed();
  const other = stack.versions.find((v) => v !== before)!;
  const realtime = createReclassifyActivities({ ...stack.clients, config, logger, modelPointerTtlMs: 500 });
  const reclassify = async () => {
    const event = purchaseEvent(`cust-mops-${randomUUID().slice(0, 8)}`, 42) as PurchaseEvent;
    const r = await realtime.reclassifyCustomerEvents({
      customerId: event.customer_id,
      events: [{ event, publishTime: new Date().toISOString() }],
    });
    return r.modelVersion;
  };
  assert.equal(await reclassify(), before);

  const promoted = await ops<PromotionResult>(['promote', other, '--note', 'test: promote the other night', '--by', 'model-ops-test']);
  assert.deepEqual([promoted.changed, promoted.model_version, promoted.previous_version], [true, other, before]);
  const promoteMs = await servedWithin(other, 5_000);
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(await reclassify(), other, 'the real-time path assigns with the promoted model');

  const models = await api<{ current: string; models: { version: string; promoted_by: string | null; promotion_note: string | null }[] }>(
    '/v1/models',
  );
  assert.equal(models.current, other);
  const entry = models.models.find((m) => m.version === other);
  assert.deepEqual([entry?.promoted_by, entry?.promotion_note], ['model-ops-test', 'test: promote the other night']);

  const rolledBack = await ops<PromotionResult>(['rollback', '--note', 'test: back again', '--by', 'model-ops-test']);
  assert.deepEqual([rolledBack.action, rolledBack.model_version, rolledBack.previous_version], ['rollback', before, other]);
  const rollbackMs = await servedWithin(before, 5_000);
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(await reclassify(), before, 'the real-time path is back on the earlier model');

  const records = await readPromotions({ bigquery: stack.clients.bigquery, config });
  assert.deepEqual(
    records.slice(0, 2).map((r) => [r.action, r.model_version, r.promoted_by, r.note]),
    [
      ['rollback', before, 'model-ops-test', 'test: back again'],
      ['promote', other, 'model-ops-test', 'test: promote the other night'],
    ],
  );
  assert.ok(
    records.some((r) => r.action === 'nightly'),
    'the nightly promotions are recorded too',
  );
  logger.info({ promoteMs, rollbackMs }, 'model switches observed by the API');
});
