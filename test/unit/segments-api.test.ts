/**
 * The segments API's own logic, over a model trained by the real segmentation code and an
 * in-memory registry: the population centroid, the fallback to training-sample sizes, the answers
 * before any promotion, and that the current version is read on every request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { populationCentroid, type SegmentsSource } from '../../api/segments.js';
import { buildProfileApi } from '../../api/server.js';
import { createLogger } from '../../core/logger.js';
import {
  DEFAULT_SEGMENT_FEATURES,
  applyPreparation,
  toOriginalUnits,
  trainSegmentModel,
  type SegmentModel,
} from '../../core/segmentation/index.js';
import type { SegmentSize } from '../../stores/model-registry.js';
import { syntheticFeatureRows } from '../support/segmentation-fixtures.js';

const TOKEN = 'unit-segments-token-0123456789';
const rows = syntheticFeatureRows(400, 5, new Date('2026-11-25T00:00:00Z')) as unknown as Record<string, number | null>[];
const train = (k: number, version: string) =>
  trainSegmentModel(
    rows,
    { features: DEFAULT_SEGMENT_FEATURES, kMin: k, kMax: k, seed: 3, silhouetteSampleSize: 200 },
    { version, createdAt: '2026-11-25T00:00:00Z' },
  );

const models = new Map<string, SegmentModel>();
const sizes = new Map<string, SegmentSize[]>();
let current: string | null = null;
const source: SegmentsSource = {
  listModels: async () => [],
  currentVersion: async () => current,
  model: async (v) => models.get(v) ?? null,
  sizes: async (v) => sizes.get(v) ?? [],
  members: async () => [],
  stability: async () => [],
  versionSizes: async () => [],
  transitions: async () => [],
  thresholds: () => null,
};
const app = buildProfileApi({
  store: { getProfile: async () => null },
  tokens: [TOKEN],
  logger: createLogger({ level: 'warn', name: 'unit-segments' }),
  segments: source,
});
const get = async (url: string) => {
  const res = await app.inject({ url, headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> };
};

before(() => {
  models.set('v1', train(4, 'v1'));
  models.set('v2', train(3, 'v2'));
});
after(() => app.close());

describe('segments API', () => {
  it("the population centroid is the training rows' mean in the model's scaled space, in original units", () => {
    const one = models.get('v1')!;
    assert.ok(one.training.converged && one.training.sample_size === rows.length, 'centroids are the means of all training rows they hold');
    const prepared = rows.map((r) => applyPreparation(one.preparation, r));
    const mean = prepared[0]!.map((_, j) => prepared.reduce((s, p) => s + p[j]!, 0) / prepared.length);
    const expected = toOriginalUnits(one.preparation, mean);
    populationCentroid(one).forEach((v, j) =>
      assert.ok(Math.abs(v - expected[j]!) <= 1e-6 * Math.max(1, Math.abs(expected[j]!)), `${j}: ${v} vs ${expected[j]}`),
    );
  });

  it('404 before any promotion; then the current version, read on every request', async () => {
    const none = await get('/v1/segments');
    assert.equal(none.status, 404);
    assert.match(String(none.body.message), /no model has been promoted yet/);
    current = 'v1';
    assert.equal((await get('/v1/segments')).body.model_version, 'v1');
    current = 'v2';
    const res = await get('/v1/segments');
    assert.deepEqual([res.body.model_version, (res.body.segments as unknown[]).length], ['v2', 3]);
    assert.equal((await get('/v1/models')).body.current, 'v2');
  });

  it('sizes from marts.customer_segments when the version was assigned there, else the training sample, and says which', async () => {
    const model = models.get('v1')!;
    const training = await get('/v1/segments?version=v1');
    assert.equal(training.body.size_source, 'training_sample');
    assert.deepEqual(
      (training.body.segments as { size: number }[]).map((s) => s.size),
      model.segments.map((s) => s.size),
    );
    sizes.set('v1', [{ segment_id: model.segments[0]!.id, segment_label: model.segments[0]!.label, customers: 30, share: 1 }]);
    const counted = await get('/v1/segments?version=v1');
    assert.equal(counted.body.size_source, 'customer_segments');
    const segs = counted.body.segments as { id: number; size: number; share: number }[];
    assert.deepEqual(
      segs.map((s) => [s.size, s.share]),
      model.segments.map((_, i) => (i === 0 ? [30, 1] : [0, 0])),
      'a segment with no customer counts 0',
    );
    assert.equal(counted.body.customers, 30);
  });

  it('an unknown version is 404, a malformed one 400, without a token 401', async () => {
    assert.equal((await get('/v1/models/v9')).status, 404);
    assert.equal((await get('/v1/segments?version=v9')).status, 404);
    assert.equal((await get('/v1/models/-v1')).status, 400);
    assert.equal((await get(`/v1/models/${'v'.repeat(129)}`)).status, 400);
    assert.equal((await app.inject({ url: '/v1/models' })).statusCode, 401);
  });
});

describe('explorer page', () => {
  it('serves the page and the three charting libraries, and nothing else from node_modules', async () => {
    const redirect = await app.inject({ url: '/explorer' });
    assert.deepEqual([redirect.statusCode, redirect.headers.location], [302, '/explorer/']);
    const page = await app.inject({ url: '/explorer/' });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /vendor\/vega-embed\/build\/vega-embed\.min\.js/);
    for (const lib of ['vega/build/vega.min.js', 'vega-lite/build/vega-lite.min.js', 'vega-embed/build/vega-embed.min.js']) {
      assert.equal((await app.inject({ url: `/explorer/vendor/${lib}` })).statusCode, 200, lib);
    }
    for (const url of [
      '/explorer/vendor/vega/package.json',
      '/explorer/vendor/fastify/package.json',
      '/explorer/vendor/..%2F..%2Fpackage.json',
      '/explorer/..%2Fserver.ts',
    ]) {
      const res = await app.inject({ url });
      assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${url} -> ${res.statusCode}`);
    }
  });
});
