/**
 * Cohesion and separation of a segmentation (the gate they set is cohesion-gate.ts).
 *
 * Per segment: mean silhouette (on a seeded sample of rows), mean distance of its rows to
 * its centroid, and the distance to the nearest other centroid. For the model: mean
 * silhouette, Davies-Bouldin (mean over segments of the worst (S_i + S_j) / d(c_i, c_j),
 * lower is better) and Calinski-Harabasz (between- over within-segment dispersion, each per
 * degree of freedom, higher is better). Distances are Euclidean in prepared space, to the
 * model's centroids (the means of their segments once k-means has converged).
 */
import { z } from 'zod';
import { assignAll, checkMatrix, flattenCentroids } from './assign.js';
import type { CentroidsInput } from './assign.js';
import { PairwiseDistances } from './kselect.js';
import { deriveSeed, sampleIndices, takeRows } from './random.js';

export const SegmentCohesionSchema = z.object({
  /** Index of the segment (centroid order of the model). */
  index: z.number().int().nonnegative(),
  /** Mean silhouette of the segment's rows in the silhouette sample; null when none was drawn. */
  silhouette: z.number().min(-1).max(1).nullable(),
  mean_distance: z.number().nonnegative(),
  nearest_centroid_distance: z.number().nonnegative().nullable(),
  nearest_index: z.number().int().nonnegative().nullable(),
});
export type SegmentCohesion = z.infer<typeof SegmentCohesionSchema>;

export const CohesionSchema = z.object({
  silhouette: z.number().min(-1).max(1),
  /** Null with one segment (no other to compare with). */
  davies_bouldin: z.number().nonnegative().nullable(),
  calinski_harabasz: z.number().nonnegative().nullable(),
  /** Rows the silhouettes were computed on, and every row for the rest. */
  silhouette_rows: z.number().int().nonnegative(),
  rows: z.number().int().nonnegative(),
  segments: z.array(SegmentCohesionSchema),
});
export type Cohesion = z.infer<typeof CohesionSchema>;

function distance(a: Float64Array, i: number, b: Float64Array, j: number, dim: number): number {
  let d = 0;
  for (let q = 0; q < dim; q++) {
    const t = a[i * dim + q]! - b[j * dim + q]!;
    d += t * t;
  }
  return Math.sqrt(d);
}

/**
 * Davies-Bouldin from the segments' mean distances to their centroids (`scatter`) and the
 * centroids; segments with no rows count as absent. Null when fewer than two are present.
 */
export function daviesBouldin(centroids: Float64Array, dim: number, scatter: readonly number[], sizes: readonly number[]): number | null {
  const k = scatter.length;
  const present = [...Array(k).keys()].filter((c) => sizes[c]! > 0);
  if (present.length < 2) return null;
  let total = 0;
  for (const i of present) {
    let worst = 0;
    for (const j of present) {
      if (j === i) continue;
      const d = distance(centroids, i, centroids, j, dim);
      // Two segments on one centroid cannot be told apart at all.
      const r = d > 0 ? (scatter[i]! + scatter[j]!) / d : Infinity;
      if (r > worst) worst = r;
    }
    total += worst;
  }
  return total / present.length;
}

/**
 * Calinski-Harabasz: (between / (k - 1)) / (within / (n - k)), between = sum of n_c * |c - mean|^2,
 * within = sum of |x - c(x)|^2. Null when k < 2 or n <= k; 0 within dispersion gives 0 when
 * between is 0 too, else is undefined and reported as null.
 */
export function calinskiHarabasz(
  matrix: Float64Array,
  nRows: number,
  dim: number,
  centroids: Float64Array,
  labels: ArrayLike<number>,
  sizes: readonly number[],
): number | null {
  const k = sizes.filter((s) => s > 0).length;
  if (k < 2 || nRows <= k) return null;
  const mean = new Float64Array(dim);
  for (let r = 0; r < nRows; r++) for (let q = 0; q < dim; q++) mean[q]! += matrix[r * dim + q]! / nRows;
  let between = 0;
  sizes.forEach((n, c) => {
    if (n > 0) between += n * distance(centroids, c, mean, 0, dim) ** 2;
  });
  let within = 0;
  for (let r = 0; r < nRows; r++) within += distance(matrix, r, centroids, labels[r]!, dim) ** 2;
  if (within === 0) return between === 0 ? 0 : null;
  return between / (k - 1) / (within / (nRows - k));
}

/** Cohesion and separation of the centroids over the prepared rows (training rows, row-major). */
export function cohesionFigures(
  matrix: Float64Array,
  nRows: number,
  dim: number,
  centroidsInput: CentroidsInput,
  options: { seed: number; silhouetteSampleSize: number },
): Cohesion {
  checkMatrix(matrix, nRows, dim);
  const centroids = flattenCentroids(centroidsInput, dim);
  const k = centroids.length / dim;
  const { labels, sizes } = assignAll(matrix, nRows, dim, centroids);
  const sums = new Float64Array(k);
  for (let r = 0; r < nRows; r++) sums[labels[r]!]! += distance(matrix, r, centroids, labels[r]!, dim);
  const scatter = sizes.map((n, c) => (n > 0 ? sums[c]! / n : 0));

  const silIdx = sampleIndices(nRows, options.silhouetteSampleSize, deriveSeed(options.seed, 7919));
  const silRows = takeRows(matrix, dim, silIdx);
  const silLabels = assignAll(silRows, silIdx.length, dim, centroids).labels;
  const values = new PairwiseDistances(silRows, silIdx.length, dim).silhouettes(silLabels, k);
  const silSum = new Float64Array(k);
  const silCount = new Float64Array(k);
  let silTotal = 0;
  for (let i = 0; i < silIdx.length; i++) {
    const v = values?.[i] ?? 0;
    silSum[silLabels[i]!]! += v;
    silCount[silLabels[i]!]! += 1;
    silTotal += v;
  }

  const segments = Array.from({ length: k }, (_, c): SegmentCohesion => {
    let nearest: number | null = null;
    let nearestD = Infinity;
    for (let o = 0; o < k; o++) {
      if (o === c) continue;
      const d = distance(centroids, c, centroids, o, dim);
      if (d < nearestD) {
        nearestD = d;
        nearest = o;
      }
    }
    return {
      index: c,
      silhouette: values === null ? (silCount[c]! > 0 ? 0 : null) : silCount[c]! > 0 ? silSum[c]! / silCount[c]! : null,
      mean_distance: scatter[c]!,
      nearest_centroid_distance: nearest === null ? null : nearestD,
      nearest_index: nearest,
    };
  });
  return {
    silhouette: silIdx.length > 0 ? silTotal / silIdx.length : 0,
    davies_bouldin: daviesBouldin(centroids, dim, scatter, sizes),
    calinski_harabasz: calinskiHarabasz(matrix, nRows, dim, centroids, labels, sizes),
    silhouette_rows: silIdx.length,
    rows: nRows,
    segments,
  };
}
