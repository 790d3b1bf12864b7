import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kmeans } from 'ml-kmeans';
import { assignAll } from '../../../core/segmentation/assign.js';
import { createRng } from '../../../core/random.js';
import { MIN_SHARED_ASSIGN_ROWS, assignShared, restartThreadReady, warmRestartThread } from '../../../core/segmentation/restart-thread.js';
import { trainKMeans } from '../../../core/segmentation/train.js';

/** `groups` Gaussian-ish blobs in [0,1]^dim, row-major. */
function blobs(n: number, dim: number, groups: number, seed: number): Float64Array {
  const rng = createRng(seed);
  const centres = Array.from({ length: groups }, () => Array.from({ length: dim }, () => rng.next()));
  const m = new Float64Array(n * dim);
  for (let r = 0; r < n; r++) {
    const c = centres[Math.floor(rng.next() * groups)]!;
    for (let j = 0; j < dim; j++) m[r * dim + j] = c[j]! + 0.05 * (rng.next() + rng.next() + rng.next() - 1.5);
  }
  return m;
}

test('given starting centroids, training is ml-kmeans from them, scored with the assignment rule', () => {
  const dim = 5;
  const n = 1500;
  const matrix = blobs(n, dim, 6, 11);
  const rows = Array.from({ length: n }, (_, r) => Array.from(matrix.subarray(r * dim, (r + 1) * dim)));
  const start = [0, 250, 500, 750, 1000, 1250].map((r) => rows[r]!);
  const ours = trainKMeans(matrix, n, dim, { k: 6, seed: 1, initialCentroids: start, tolerance: 0 });
  const theirs = kmeans(rows, 6, { initialization: start, maxIterations: 100, tolerance: 0 });
  assert.deepEqual(ours.centroids, theirs.centroids);
  assert.equal(ours.converged, theirs.converged);
  // The labels and inertia returned belong to the centroids returned.
  const check = assignAll(matrix, n, dim, ours.centroids);
  assert.deepEqual(check.labels, ours.labels);
  assert.equal(check.inertia, ours.inertia);
});

test('the best of several restarts is never worse than the first one alone', () => {
  const dim = 3;
  const n = 3000;
  const matrix = blobs(n, dim, 9, 2);
  const one = trainKMeans(matrix, n, dim, { k: 6, seed: 9, nInit: 1 });
  const many = trainKMeans(matrix, n, dim, { k: 6, seed: 9, nInit: 6 });
  assert.equal(many.runs.length, 6);
  assert.equal(many.runs[0]!.inertia, one.runs[0]!.inertia, 'the first restart uses the same derived seed');
  assert.equal(many.inertia, Math.min(...many.runs.map((r) => r.inertia)));
  assert.ok(many.inertia <= one.inertia, `${many.inertia} > ${one.inertia}`);
});

test('restarts on a subsample, ranked on more rows, then the winner on every row: reproducible, scored on all rows', () => {
  const dim = 4;
  const n = 6000;
  const matrix = blobs(n, dim, 5, 4);
  const a = trainKMeans(matrix, n, dim, { k: 5, seed: 3, nInit: 4, restartRows: 1000 });
  const b = trainKMeans(matrix, n, dim, { k: 5, seed: 3, nInit: 4, restartRows: 1000 });
  assert.deepEqual(a.centroids, b.centroids);
  assert.equal(a.runs.length, 4);
  assert.equal(a.labels.length, n);
  assert.equal(
    a.sizes.reduce((s, x) => s + x, 0),
    n,
  );
  const check = assignAll(matrix, n, dim, a.centroids);
  assert.equal(check.inertia, a.inertia);
  assert.equal(a.restartRows, 1000);
  // Restarts ran on 1,000 rows but are scored on all 6,000 (scored on the subsample they would be about
  // a sixth of the final inertia); the lowest wins, and the Lloyd iterations after it only lower it.
  const winner = a.runs.find((r) => r.seed === a.seed)!;
  assert.equal(winner.inertia, Math.min(...a.runs.map((r) => r.inertia)));
  for (const run of a.runs) assert.ok(run.inertia >= a.inertia * (1 - 1e-12), `${run.inertia} < ${a.inertia}`);
  assert.equal(a.rankRows, n);
  const whole = trainKMeans(matrix, n, dim, { k: 5, seed: 3, nInit: 4, restartRows: 4000 });
  assert.equal(whole.restartRows, n, 'a subsample over half the rows is not worth drawing');
  // Ranked on a subsample of 2,000 rows: their inertias are about a third of the ones on all 6,000.
  const ranked = trainKMeans(matrix, n, dim, { k: 5, seed: 3, nInit: 4, restartRows: 1000, rankRows: 2000 });
  assert.equal(ranked.rankRows, 2000);
  for (const run of ranked.runs)
    assert.ok(run.inertia > ranked.inertia / 4 && run.inertia < ranked.inertia / 2, `${run.inertia} vs ${ranked.inertia}`);
  assert.equal(ranked.labels.length, n);
  assert.equal(assignAll(matrix, n, dim, ranked.centroids).inertia, ranked.inertia);
  assert.throws(() => trainKMeans(matrix, n, dim, { k: 5, seed: 3, rankRows: 2.5 }), /rankRows/);
  assert.throws(() => trainKMeans(matrix, n, dim, { k: 5, seed: 3, restartRows: 4 }), /restartRows/);
});

/** Starts the helper thread and waits until it takes work. */
async function helperThreadUp(): Promise<void> {
  warmRestartThread();
  const deadline = Date.now() + 60_000;
  while (!restartThreadReady() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(restartThreadReady(), 'the helper thread did not load within 60 s');
}

test('restarts shared with the helper thread give exactly the result of running them all here', async () => {
  await helperThreadUp();
  const dim = 6;
  const n = 8000;
  const matrix = blobs(n, dim, 7, 12);
  const options = { k: 7, seed: 21, nInit: 5, restartRows: 800 };
  const shared = trainKMeans(matrix, n, dim, options);
  const here = trainKMeans(matrix, n, dim, { ...options, parallel: false });
  assert.equal(shared.restartsOnHelper, 2, 'two of the five restarts run on the helper');
  assert.equal(here.restartsOnHelper, 0);
  assert.deepEqual(shared.runs, here.runs);
  assert.deepEqual(shared.centroids, here.centroids);
  assert.equal(shared.seed, here.seed);
  assert.equal(shared.inertia, here.inertia);
  assert.deepEqual(shared.labels, here.labels);
});

test('an assignment pass split with the helper thread labels every row as one pass here does', async () => {
  await helperThreadUp();
  const dim = 5;
  const n = MIN_SHARED_ASSIGN_ROWS + 1_001;
  const rows = blobs(n, dim, 6, 31);
  const centroids = blobs(6, dim, 6, 32);
  const matrix = new Float64Array(new SharedArrayBuffer(rows.byteLength));
  matrix.set(rows);
  const split = assignShared(matrix, n, dim, centroids);
  const here = assignAll(rows, n, dim, centroids);
  assert.equal(split.onHelper, n - Math.floor(n / 2), 'the second half ran on the helper');
  assert.deepEqual([...split.labels], [...here.labels]);
  assert.deepEqual(split.sizes, here.sizes);
  assert.ok(Math.abs(split.inertia - here.inertia) <= 1e-12 * here.inertia, `${split.inertia} vs ${here.inertia}`);
  // Not in shared memory, or too few rows: one pass here.
  assert.equal(assignShared(rows, n, dim, centroids).onHelper, 0);
  assert.equal(assignShared(matrix, MIN_SHARED_ASSIGN_ROWS - 1, dim, centroids).onHelper, 0);
});
