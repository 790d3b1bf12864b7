import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kmeans } from 'ml-kmeans';
import { assignAll, unflattenCentroids } from '../../../core/segmentation/assign.js';
import { createRng } from '../../../core/segmentation/random.js';
import { kmeansPlusPlus, lloyd, trainKMeans } from '../../../core/segmentation/train.js';

/** `groups` Gaussian-ish blobs in [0,1]^dim, row-major. */
function blobs(n: number, dim: number, groups: number, seed: number): Float64Array {
  const rng = createRng(seed);
  const centres = Array.from({ length: groups }, () => Array.from({ length: dim }, () => rng()));
  const m = new Float64Array(n * dim);
  for (let r = 0; r < n; r++) {
    const c = centres[Math.floor(rng() * groups)]!;
    for (let j = 0; j < dim; j++) m[r * dim + j] = c[j]! + 0.05 * (rng() + rng() + rng() - 1.5);
  }
  return m;
}

test('from the same starting centroids, Lloyd here converges to exactly what ml-kmeans converges to', () => {
  const dim = 5;
  const n = 1500;
  const matrix = blobs(n, dim, 6, 11);
  const start = kmeansPlusPlus(matrix, n, dim, 6, createRng(5));
  const ours = lloyd(matrix, n, dim, start, { maxIterations: 100, tolerance: 0 });
  const rows = Array.from({ length: n }, (_, r) => Array.from(matrix.subarray(r * dim, (r + 1) * dim)));
  const theirs = kmeans(rows, 6, { initialization: unflattenCentroids(start, dim), maxIterations: 100, tolerance: 0 });
  assert.ok(ours.converged && theirs.converged);
  assert.deepEqual(unflattenCentroids(ours.centroids, dim), theirs.centroids);
  // The labels and inertia returned belong to the centroids returned.
  const check = assignAll(matrix, n, dim, ours.centroids);
  assert.deepEqual(check.labels, ours.labels);
  assert.equal(check.inertia, ours.inertia);
});

test('k-means++ picks k distinct training rows, reproducibly from its seed', () => {
  const dim = 3;
  const n = 400;
  const matrix = blobs(n, dim, 4, 2);
  const a = kmeansPlusPlus(matrix, n, dim, 4, createRng(9));
  assert.deepEqual(kmeansPlusPlus(matrix, n, dim, 4, createRng(9)), a);
  const rows = new Set(Array.from({ length: n }, (_, r) => matrix.subarray(r * dim, (r + 1) * dim).join(',')));
  const picked = unflattenCentroids(a, dim).map((c) => c.join(','));
  assert.equal(new Set(picked).size, 4);
  for (const c of picked) assert.ok(rows.has(c), `${c} is not a training row`);
});

test('restarts on a subsample, then the winner on every row: reproducible, scored on all rows', () => {
  const dim = 4;
  const n = 6000;
  const matrix = blobs(n, dim, 5, 4);
  const a = trainKMeans(matrix, n, dim, { k: 5, seed: 3, nInit: 4, restartRows: 1000 });
  const b = trainKMeans(matrix, n, dim, { k: 5, seed: 3, nInit: 4, restartRows: 1000 });
  assert.deepEqual(a.centroids, b.centroids);
  assert.equal(a.runs.length, 4);
  assert.equal(a.labels.length, n);
  assert.equal(a.sizes.reduce((s, x) => s + x, 0), n);
  const check = assignAll(matrix, n, dim, a.centroids);
  assert.equal(check.inertia, a.inertia);
  // The winner's restart inertia was measured on 1,000 rows, so it is about a sixth of the full one.
  const winner = a.runs.find((r) => r.seed === a.seed)!;
  assert.ok(winner.inertia < a.inertia / 3, `${winner.inertia} vs ${a.inertia}`);
  assert.throws(() => trainKMeans(matrix, n, dim, { k: 5, seed: 3, restartRows: 4 }), /restartRows/);
});
