import assert from 'node:assert/strict';
import { test } from 'node:test';
import { elbowK, KSelectionError, selectK, silhouetteScore } from '../../../core/segmentation/kselect.js';
import { adjustedRandIndex } from '../../../core/segmentation/stability.js';
import { trainKMeans } from '../../../core/segmentation/train.js';
import { blobs } from './fixtures.js';

const FIVE_CENTRES = [
  [0, 0, 0, 0],
  [10, 0, 0, 0],
  [0, 10, 0, 0],
  [0, 0, 10, 0],
  [0, 0, 0, 10],
];

test('k selection picks 5 on 5 well-separated blobs, and reports every k', () => {
  const { matrix, nRows, dim, truth } = blobs(FIVE_CENTRES, 120, 1, 5);
  const { selection, fit } = selectK(matrix, nRows, dim, { seed: 42, kMin: 2, kMax: 9, silhouetteSampleSize: 400 });
  assert.equal(selection.chosen_k, 5, JSON.stringify(selection.candidates));
  assert.deepEqual(
    selection.candidates.map((c) => c.k),
    [2, 3, 4, 5, 6, 7, 8, 9],
  );
  const five = selection.candidates.find((c) => c.k === 5)!;
  for (const c of selection.candidates) {
    if (c.k !== 5) assert.ok(c.silhouette < five.silhouette, `k=${c.k} silhouette ${c.silhouette} >= k=5's ${five.silhouette}`);
  }
  // Inertia falls with k and the knee of the curve sits at the true k too.
  assert.equal(selection.elbow_k, 5);
  assert.equal(fit.k, 5);
  assert.ok(adjustedRandIndex(truth, fit.labels) > 0.99);
});

test('k selection rejects k that leaves a segment below the minimum share', () => {
  // Four blobs of 100 rows and one of 12: 12 / 412 = 2.91% of the rows.
  const big = blobs(FIVE_CENTRES.slice(0, 4), 100, 1, 9);
  const small = blobs([FIVE_CENTRES[4]!], 12, 1, 10);
  const matrix = new Float64Array([...big.matrix, ...small.matrix]);
  const nRows = big.nRows + small.nRows;
  const { selection } = selectK(matrix, nRows, 4, { seed: 1, kMin: 2, kMax: 6, minSegmentShare: 0.05, silhouetteSampleSize: 300 });
  const five = selection.candidates.find((c) => c.k === 5)!;
  assert.match(five.rejected_reason ?? '', /smallest segment holds 2\.91% of customers/);
  assert.equal(selection.chosen_k, 4);
  assert.throws(
    () => selectK(matrix, nRows, 4, { seed: 1, kMin: 5, kMax: 6, minSegmentShare: 0.05, silhouetteSampleSize: 300 }),
    (err: unknown) => err instanceof KSelectionError && err.candidates.length === 2 && /no k in 5\.\.6 passed/.test(err.message),
  );
});

test('maxK caps the choice but the table still shows larger k', () => {
  const { matrix, nRows, dim } = blobs(FIVE_CENTRES, 60, 1, 3);
  const { selection } = selectK(matrix, nRows, dim, { seed: 3, kMin: 2, kMax: 6, maxK: 4, silhouetteSampleSize: 300 });
  assert.ok(selection.chosen_k <= 4);
  assert.match(selection.candidates.find((c) => c.k === 5)?.rejected_reason ?? '', /above maxK 4/);
});

test('elbow: the knee of a convex decreasing curve, none for a straight line', () => {
  assert.equal(
    elbowK([
      { k: 2, inertia: 100 },
      { k: 3, inertia: 60 },
      { k: 4, inertia: 30 },
      { k: 5, inertia: 25 },
      { k: 6, inertia: 22 },
    ]),
    4,
  );
  assert.equal(
    elbowK([
      { k: 2, inertia: 30 },
      { k: 3, inertia: 20 },
      { k: 4, inertia: 10 },
    ]),
    null,
  );
});

test('silhouette matches a hand computation', () => {
  // Points 0, 1 (cluster 0) and 4 (cluster 1) on a line:
  // s(0) = 1 - 1/4 = 0.75, s(1) = 1 - 1/3, s(4) = 0 (alone in its cluster).
  const s = silhouetteScore(Float64Array.from([0, 1, 4]), 3, 1, [0, 0, 1], 2);
  assert.ok(Math.abs(s - (0.75 + 2 / 3) / 3) < 1e-12, String(s));
});

test('training is reproducible from the seed and keeps the best restart', () => {
  const { matrix, nRows, dim } = blobs(FIVE_CENTRES, 50, 2.5, 4);
  const a = trainKMeans(matrix, nRows, dim, { k: 5, seed: 99, nInit: 4 });
  const b = trainKMeans(matrix, nRows, dim, { k: 5, seed: 99, nInit: 4 });
  assert.deepEqual(a.centroids, b.centroids);
  assert.equal(a.inertia, Math.min(...a.runs.map((r) => r.inertia)));
  assert.equal(a.runs.length, 4);
  assert.equal(new Set(a.runs.map((r) => r.seed)).size, 4);
  assert.throws(() => trainKMeans(Float64Array.from([1, 1, 1, 1]), 4, 1, { k: 2, seed: 1 }), /distinct rows/);
});
