/**
 * K-means training on prepared rows with ml-kmeans: k-means++ seeding and
 * Lloyd iterations, repeated n_init times with seeds derived from one seed;
 * the restart with the lowest inertia wins.
 */
import { kmeans } from 'ml-kmeans';
import { assignAll, checkMatrix, flattenCentroids } from './assign.js';
import { deriveSeed } from './random.js';

export interface TrainOptions {
  k: number;
  seed: number;
  /** Restarts; the best inertia wins. */
  nInit?: number;
  maxIterations?: number;
  /** ml-kmeans stops when no centroid moves by more than this squared distance. */
  tolerance?: number;
}

export const TRAIN_DEFAULTS = { nInit: 4, maxIterations: 100, tolerance: 1e-6 } as const;

export interface TrainRun {
  seed: number;
  inertia: number;
  iterations: number;
  converged: boolean;
}

export interface TrainResult {
  k: number;
  /** Centroids in prepared space, in ml-kmeans' order for the winning restart. */
  centroids: number[][];
  /** Sum of squared distances to the nearest centroid over the training rows. */
  inertia: number;
  sizes: number[];
  /** Nearest-centroid label of every training row (same rule as real-time assignment). */
  labels: Int32Array;
  iterations: number;
  converged: boolean;
  /** The seed of the winning restart. */
  seed: number;
  runs: TrainRun[];
}

function toRows(matrix: Float64Array, nRows: number, dim: number): number[][] {
  const rows = new Array<number[]>(nRows);
  for (let r = 0; r < nRows; r++) rows[r] = Array.from(matrix.subarray(r * dim, (r + 1) * dim));
  return rows;
}

/** True when the rows hold at least `k` distinct points; stops looking as soon as they do. */
function hasDistinctRows(rows: readonly number[][], k: number): boolean {
  const seen = new Set<string>();
  for (const row of rows) {
    seen.add(row.join(','));
    if (seen.size >= k) return true;
  }
  return false;
}

export function trainKMeans(matrix: Float64Array, nRows: number, dim: number, options: TrainOptions): TrainResult {
  checkMatrix(matrix, nRows, dim);
  const { k, seed } = options;
  const nInit = options.nInit ?? TRAIN_DEFAULTS.nInit;
  const maxIterations = options.maxIterations ?? TRAIN_DEFAULTS.maxIterations;
  const tolerance = options.tolerance ?? TRAIN_DEFAULTS.tolerance;
  if (!Number.isInteger(k) || k < 1) throw new Error(`trainKMeans: expected an integer k >= 1, got ${k}`);
  if (!Number.isInteger(nInit) || nInit < 1) throw new Error(`trainKMeans: expected nInit >= 1, got ${nInit}`);
  if (!Number.isInteger(maxIterations) || maxIterations < 1) {
    throw new Error(`trainKMeans: expected maxIterations >= 1, got ${maxIterations}`);
  }
  if (nRows < k) throw new Error(`trainKMeans: k=${k} needs at least ${k} training rows, got ${nRows}`);
  const rows = toRows(matrix, nRows, dim);
  // k-means++ divides by the total distance to the chosen centres, which is 0 when every row is alike.
  if (!hasDistinctRows(rows, k)) {
    throw new Error(`trainKMeans: k=${k} needs at least ${k} distinct rows; the training rows have fewer. Lower k or widen the sample.`);
  }

  let best: TrainResult | undefined;
  const runs: TrainRun[] = [];
  for (let i = 0; i < nInit; i++) {
    const runSeed = deriveSeed(seed, i);
    const fit = kmeans(rows, k, { seed: runSeed, initialization: 'kmeans++', maxIterations, tolerance });
    // ml-kmeans' labels belong to the centroids of the step before the last; score the final centroids ourselves.
    const flat = flattenCentroids(fit.centroids, dim);
    const scored = assignAll(matrix, nRows, dim, flat);
    runs.push({ seed: runSeed, inertia: scored.inertia, iterations: fit.iterations, converged: fit.converged });
    if (!best || scored.inertia < best.inertia) {
      best = {
        k,
        centroids: fit.centroids.map((c) => [...c]),
        inertia: scored.inertia,
        sizes: scored.sizes,
        labels: scored.labels,
        iterations: fit.iterations,
        converged: fit.converged,
        seed: runSeed,
        runs,
      };
    }
  }
  if (!best) throw new Error('trainKMeans: no restart ran');
  return best;
}
