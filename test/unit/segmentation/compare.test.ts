import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRng } from '../../../core/random.js';
import { adjustedRandIndex } from '../../../core/segmentation/agreement.js';
import { compareAlgorithms, dbscanEps, recommend, runDbscan } from '../../../core/segmentation/compare.js';
import type { AlgorithmReport } from '../../../core/segmentation/compare.js';
import { blobs } from './fixtures.js';

const options = { seed: 5, kMin: 2, kMax: 6, silhouetteSampleSize: 400, stabilitySampleSize: 300 };

test('well separated blobs: K-Means, hierarchical and DBSCAN all find them, and K-Means is recommended', () => {
  const { matrix, nRows, dim, truth } = blobs(
    [
      [0, 0],
      [8, 0],
      [0, 8],
    ],
    80,
    0.6,
    21,
  );
  const cmp = compareAlgorithms(matrix, nRows, dim, options);
  assert.deepEqual(
    cmp.reports.map((r) => r.algorithm),
    ['kmeans', 'hierarchical', 'dbscan'],
  );
  for (const r of cmp.reports) {
    assert.equal(r.clusters, 3, `${r.algorithm}: ${r.parameters}`);
    // DBSCAN leaves the sparse tails of Gaussian blobs as noise.
    assert.ok(r.noise_share < (r.algorithm === 'dbscan' ? 0.15 : 1e-9), `${r.algorithm} noise ${r.noise_share}`);
    const clustered = [...r.labels.keys()].filter((i) => r.labels[i]! >= 0);
    const ari = adjustedRandIndex(
      clustered.map((i) => truth[i]!),
      clustered.map((i) => r.labels[i]!),
    );
    assert.ok(ari > 0.98, `${r.algorithm} ARI ${ari}`);
    assert.ok(r.silhouette! > 0.7 && r.davies_bouldin! < 0.5 && r.calinski_harabasz! > 500, JSON.stringify({ ...r, labels: [] }));
    // Noise is a label of its own in DBSCAN's stability, and which tail rows are noise varies between resamples.
    assert.ok(r.stability! > (r.algorithm === 'dbscan' ? 0.5 : 0.9), `${r.algorithm} stability ${r.stability}`);
  }
  assert.equal(cmp.recommendation.algorithm, 'kmeans', cmp.recommendation.reason);
});

/** Two concentric rings with a little uniform noise: not convex, so centroids cut them wrongly. */
function rings(perRing: number, noise: number, seed: number) {
  const rng = createRng(seed);
  const points: number[] = [];
  const truth: number[] = [];
  [1, 4].forEach((radius, ring) => {
    for (let i = 0; i < perRing * radius; i++) {
      // Evenly spread angles with jitter: a ring with a chance gap wider than eps is two clusters, rightly.
      const a = (2 * Math.PI * (i + 0.3 * rng.next())) / (perRing * radius);
      const r = radius + rng.normal(0, 0.08);
      points.push(r * Math.cos(a), r * Math.sin(a));
      truth.push(ring);
    }
  });
  for (let i = 0; i < noise; i++) {
    points.push(rng.next() * 12 - 6, rng.next() * 12 - 6);
    truth.push(2);
  }
  return { matrix: Float64Array.from(points), nRows: truth.length, dim: 2, truth };
}

test('concentric rings with noise: DBSCAN separates the rings and flags the noise, the centroid methods do not', () => {
  const { matrix, nRows, dim, truth } = rings(60, 12, 8);
  const eps = dbscanEps(matrix, nRows, dim, 4);
  const labels = runDbscan(matrix, nRows, dim, eps, 4);
  const ringRows = [...labels.keys()].filter((i) => truth[i]! < 2);
  const dbAri = adjustedRandIndex(
    ringRows.map((i) => truth[i]!),
    ringRows.map((i) => labels[i]!),
  );
  assert.ok(dbAri > 0.95, `DBSCAN ARI on the rings ${dbAri} (eps ${eps})`);

  const cmp = compareAlgorithms(matrix, nRows, dim, options);
  const db = cmp.reports.find((r) => r.algorithm === 'dbscan')!;
  assert.ok(db.noise_share > 0, 'some noise rows are left out');
  for (const algorithm of ['kmeans', 'hierarchical'] as const) {
    const r = cmp.reports.find((x) => x.algorithm === algorithm)!;
    assert.equal(r.noise_share, 0);
    const ari = adjustedRandIndex(
      ringRows.map((i) => truth[i]!),
      ringRows.map((i) => r.labels[i]!),
    );
    assert.ok(ari < 0.5, `${algorithm} should not recover the rings: ARI ${ari}`);
  }
});

const report = (algorithm: AlgorithmReport['algorithm'], silhouette: number, stability: number, noise = 0): AlgorithmReport => ({
  algorithm,
  parameters: '',
  clusters: 3,
  sizes: [1, 1, 1],
  noise_share: noise,
  silhouette,
  davies_bouldin: 1,
  calinski_harabasz: 1,
  stability,
  labels: new Int32Array(0),
});
const rule = { minStability: 0.8, tolerance: 0.01, maxNoiseShare: 0.05 };

test('the recommendation: best silhouette among the stable, the simpler within tolerance, noisy DBSCAN refused', () => {
  assert.equal(
    recommend([report('kmeans', 0.5, 0.9), report('hierarchical', 0.6, 0.9), report('dbscan', 0.4, 0.9)], rule).algorithm,
    'hierarchical',
  );
  assert.equal(recommend([report('kmeans', 0.595, 0.9), report('hierarchical', 0.6, 0.9)], rule).algorithm, 'kmeans');
  const unstable = recommend([report('kmeans', 0.5, 0.9), report('hierarchical', 0.7, 0.5)], rule);
  assert.equal(unstable.algorithm, 'kmeans');
  assert.match(unstable.reason, /hierarchical does not reproduce/);
  const noisy = recommend([report('kmeans', 0.5, 0.9), report('dbscan', 0.8, 0.95, 0.2)], rule);
  assert.equal(noisy.algorithm, 'kmeans');
  assert.match(noisy.reason, /dbscan leaves 20\.0% as noise/);
  assert.match(recommend([report('kmeans', 0.5, 0.9), report('dbscan', 0.8, 0.95, 0.01)], rule).reason, /cannot train DBSCAN/);
});
