import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignAll, assignCustomer, nearestCentroid } from '../../../core/segmentation/assign.js';
import { createRng } from '../../../core/random.js';
import type { SegmentModel } from '../../../core/segmentation/model.js';

test('a tie goes to the lowest centroid index', () => {
  // Equidistant from centroids 1 and 2 (and identical centroids 0 and 3 further away).
  const centroids = [
    [5, 5],
    [0, 0],
    [2, 0],
    [5, 5],
  ];
  const r = nearestCentroid([1, 0], centroids);
  assert.equal(r.index, 1);
  assert.equal(r.distance, 1);
  assert.equal(r.margin, 0);
  // Duplicate centroids: the first copy wins, in both the single and the bulk path.
  assert.equal(nearestCentroid([5, 5], centroids).index, 0);
  const bulk = assignAll(Float64Array.from([1, 0, 5, 5, 2, 0]), 3, 2, centroids);
  assert.deepEqual(Array.from(bulk.labels), [1, 0, 2]);
  assert.deepEqual(bulk.sizes, [1, 1, 1, 0]);
  assert.equal(bulk.inertia, 1);
});

test('the bulk kernel agrees exactly with the one-row path for every k (lane padding included)', () => {
  const rng = createRng(11);
  const dim = 5;
  const nRows = 400;
  const matrix = Float64Array.from({ length: nRows * dim }, () => rng.next());
  for (let k = 1; k <= 9; k++) {
    // Quantised centroids and rows make exact ties common.
    const centroids = Array.from({ length: k }, () => Array.from({ length: dim }, () => Math.round(rng.next() * 4) / 4));
    const coarse = matrix.map((v) => Math.round(v * 4) / 4);
    const bulk = assignAll(coarse, nRows, dim, centroids);
    let inertia = 0;
    for (let r = 0; r < nRows; r++) {
      const one = nearestCentroid(coarse.subarray(r * dim, (r + 1) * dim), centroids);
      assert.equal(bulk.labels[r], one.index, `k=${k} row ${r}`);
      inertia += one.distance;
    }
    assert.equal(bulk.inertia, inertia);
  }
});

test('assignCustomer prepares the raw row and answers with the stable segment id', () => {
  const model = {
    version: 'test-1',
    preparation: {
      training_rows: 2,
      features: [
        { name: 'spend', weight: 1, log: false, fill: 50, min: 0, max: 100, missing_share: 0 },
        { name: 'visits', weight: 1, log: false, fill: 5, min: 0, max: 10, missing_share: 0 },
      ],
    },
    centroids: [
      [0.1, 0.1],
      [0.9, 0.9],
    ],
    segments: [
      { id: 7, label: 'low engagement', size: 1, share: 0.5, centroid: {}, traits: [] },
      { id: 3, label: 'big spenders', size: 1, share: 0.5, centroid: {}, traits: [] },
    ],
  } as unknown as SegmentModel;
  const a = assignCustomer(model, { spend: 95, visits: null });
  assert.equal(a.index, 1);
  assert.equal(a.segmentId, 3);
  assert.equal(a.label, 'big spenders');
  assert.equal(a.modelVersion, 'test-1');
  assert.deepEqual(a.vector, [0.95, 0.5]);
});
