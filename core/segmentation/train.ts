/**
 * K-means training on prepared rows with ml-kmeans: k-means++ seeding and Lloyd
 * iterations, repeated nInit times with seeds derived from one seed; the restart
 * with the lowest inertia wins. On many rows the restarts run on a subsample
 * (`restartRows`), are ranked on a larger one (`rankRows`), and only the winner
 * iterates on every training row: which local optimum a restart falls into shows
 * on a few hundred rows, ranking needs more (one cheap assignment pass each), and
 * k-means++ is per row far dearer than a Lloyd pass, so restarting on every row
 * would cost several times the whole fit. Inertia, sizes and labels come from
 * assign.ts's kernel, the rule real-time and batch assignment use.
 */
import { kmeans } from 'ml-kmeans';
import { assignAll, checkMatrix, flattenCentroids } from './assign.js';
import { deriveSeed, sampleIndices, takeRows } from './random.js';
import { runRestartsShared } from './restart-thread.js';

export interface TrainOptions {
  k: number;
  seed: number;
  /** Restarts; the best inertia wins. */
  nInit?: number;
  maxIterations?: number;
  /** ml-kmeans stops when no centroid moves by more than this squared distance in an iteration. */
  tolerance?: number;
  /** Rows the restarts run on (a uniform subsample when there are more); the winner then iterates on all rows. */
  restartRows?: number;
  /** Rows the restarts are ranked on, when they ran on a subsample (a uniform subsample when there are over twice as many). */
  rankRows?: number;
  /** Start from these centroids instead of k-means++ restarts (nInit and restartRows then do not apply). */
  initialCentroids?: number[][];
  /**
   * Restarts on a subsample may share the work with a helper thread (default true; see
   * restart-thread.ts). The result is the same either way.
   */
  parallel?: boolean;
}

/** A training algorithm behind selectK and the bootstrap: k-means (trainKMeans) or a hierarchical cut (hierarchical.ts). */
export type Trainer = (matrix: Float64Array, nRows: number, dim: number, options: TrainOptions) => TrainResult;

export const TRAIN_DEFAULTS = { nInit: 4, maxIterations: 100, tolerance: 1e-6, restartRows: 2000, rankRows: 5000 } as const;

export interface TrainRun {
  seed: number;
  /**
   * On the rows the restarts are ranked on (`TrainResult.rankRows`: every training row, or a uniform
   * subsample of them larger than the restart subsample), before the winner's last iterations.
   */
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
  /** Rows the restarts ran on: the restart subsample's size, or every training row. */
  restartRows: number;
  /** Rows the restarts were ranked on (their inertia in `runs`). */
  rankRows: number;
  /** Restarts that ran on the helper thread (0 when all ran on the calling thread). */
  restartsOnHelper: number;
}

/**
 * ml-kmeans' input, made once per matrix and shared by every restart on it. Rows are built
 * with push (packed doubles), which V8 stores far more cheaply than Array.from on a subarray.
 */
function toRows(matrix: Float64Array, nRows: number, dim: number): number[][] {
  const rows = new Array<number[]>(nRows);
  for (let r = 0; r < nRows; r++) {
    const row: number[] = [];
    const base = r * dim;
    for (let j = 0; j < dim; j++) row.push(matrix[base + j]!);
    rows[r] = row;
  }
  return rows;
}

/** True when the rows hold at least `k` distinct points; stops looking as soon as they do. */
function hasDistinctRows(matrix: Float64Array, nRows: number, dim: number, k: number): boolean {
  const seen = new Set<string>();
  for (let r = 0; r < nRows && seen.size < k; r++) seen.add(matrix.subarray(r * dim, (r + 1) * dim).join(','));
  return seen.size >= k;
}

/**
 * ml-kmeans on `rows` from `initialization` (k-means++ with a seed, or given centroids), scored
 * here on every row of `matrix` (the training rows; `rows` may be a subsample of them):
 * ml-kmeans' own labels belong to the centroids of the step before its last.
 */
function fit(
  rows: number[][],
  k: number,
  initialization: { seed: number } | { centroids: number[][] },
  limits: { maxIterations: number; tolerance: number },
  matrix: Float64Array,
  nRows: number,
  dim: number,
) {
  const result = kmeans(rows, k, {
    ...limits,
    ...('seed' in initialization
      ? { seed: initialization.seed, initialization: 'kmeans++' as const }
      : { initialization: initialization.centroids }),
  });
  const scored = assignAll(matrix, nRows, dim, flattenCentroids(result.centroids, dim));
  return { centroids: result.centroids, iterations: result.iterations, converged: result.converged, ...scored };
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
  // k-means++ draws in proportion to the distance to the chosen centres, which is 0 everywhere when every row is alike.
  if (!hasDistinctRows(matrix, nRows, dim, k)) {
    throw new Error(`trainKMeans: k=${k} needs at least ${k} distinct rows; the training rows have fewer. Lower k or widen the sample.`);
  }
  const limits = { maxIterations, tolerance };
  if (options.initialCentroids !== undefined) {
    const given = fit(toRows(matrix, nRows, dim), k, { centroids: options.initialCentroids }, limits, matrix, nRows, dim);
    return trainResult(
      k,
      given,
      seed,
      [{ seed, inertia: given.inertia, iterations: given.iterations, converged: given.converged }],
      nRows,
      nRows,
    );
  }
  const restartRows = options.restartRows ?? TRAIN_DEFAULTS.restartRows;
  if (!Number.isInteger(restartRows) || restartRows < k) {
    throw new Error(`trainKMeans: expected restartRows to be an integer >= k (${k}), got ${restartRows}`);
  }
  const rankRows = options.rankRows ?? TRAIN_DEFAULTS.rankRows;
  if (!Number.isInteger(rankRows) || rankRows < k) {
    throw new Error(`trainKMeans: expected rankRows to be an integer >= k (${k}), got ${rankRows}`);
  }
  // Restarts on a subsample only when it is much smaller; a subsample that happened to hold fewer than
  // k distinct points falls back to all rows.
  let restartMatrix = matrix;
  let restartN = nRows;
  if (restartRows * 2 <= nRows) {
    const sub = takeRows(matrix, dim, sampleIndices(nRows, restartRows, deriveSeed(seed, 104_729)));
    if (hasDistinctRows(sub, restartRows, dim, k)) {
      restartMatrix = sub;
      restartN = restartRows;
    }
  }

  // Restarts that ran on a subsample are ranked by their inertia on more rows than that: on a few
  // hundred rows the subsample's own noise can pick the wrong local optimum. Every training row
  // when there are not many, else a uniform subsample of rankRows (one assignment pass per restart).
  let rankMatrix = matrix;
  let rankN = nRows;
  if (restartMatrix !== matrix && rankRows * 2 <= nRows) {
    rankMatrix = takeRows(matrix, dim, sampleIndices(nRows, rankRows, deriveSeed(seed, 15_485_863)));
    rankN = rankRows;
  }
  // The restarts may run on a helper thread in part (see restart-thread.ts): the same seeds give the
  // same outcomes and the same winner wherever they run.
  const seeds = Array.from({ length: nInit }, (_, i) => deriveSeed(seed, i));
  const job: RestartJob = { restart: restartMatrix, restartN, rank: rankMatrix, rankN, dim, k, seeds, ...limits };
  const { outcomes, onHelper } = options.parallel === false ? { outcomes: runRestarts(job), onHelper: 0 } : runRestartsShared(job);
  let best = outcomes[0];
  for (const o of outcomes) if (o.inertia < best!.inertia) best = o;
  if (!best) throw new Error('trainKMeans: no restart ran');
  // On a subsample the winner goes on to iterate on every training row; on every row its own fit is the result.
  const final =
    restartMatrix === matrix
      ? {
          centroids: best.centroids,
          iterations: best.iterations,
          converged: best.converged,
          ...assignAll(matrix, nRows, dim, flattenCentroids(best.centroids, dim)),
        }
      : fit(toRows(matrix, nRows, dim), k, { centroids: best.centroids }, limits, matrix, nRows, dim);
  const runs = outcomes.map(({ seed: s, inertia, iterations, converged }) => ({ seed: s, inertia, iterations, converged }));
  return { ...trainResult(k, final, best.seed, runs, restartN, rankN), restartsOnHelper: onHelper };
}

/** Restarts to run: k-means++ from each seed on `restart`, each scored on `rank`. Plain data, so it can cross threads. */
export interface RestartJob {
  restart: Float64Array;
  restartN: number;
  rank: Float64Array;
  rankN: number;
  dim: number;
  k: number;
  seeds: number[];
  maxIterations: number;
  tolerance: number;
}

export interface RestartOutcome extends TrainRun {
  centroids: number[][];
}

/** Every restart of the job on this thread, in seed order. */
export function runRestarts(job: RestartJob): RestartOutcome[] {
  const { restart, restartN, rank, rankN, dim, k, maxIterations, tolerance } = job;
  const input = toRows(restart, restartN, dim);
  return job.seeds.map((seed) => {
    const r = fit(input, k, { seed }, { maxIterations, tolerance }, rank, rankN, dim);
    return { seed, inertia: r.inertia, iterations: r.iterations, converged: r.converged, centroids: r.centroids };
  });
}

function trainResult(
  k: number,
  final: ReturnType<typeof fit>,
  seed: number,
  runs: TrainRun[],
  restartRows: number,
  rankRows: number,
): TrainResult {
  const { centroids, inertia, sizes, labels, iterations, converged } = final;
  return {
    k,
    centroids: centroids.map((c) => [...c]),
    inertia,
    sizes,
    labels,
    iterations,
    converged,
    seed,
    runs,
    restartRows,
    rankRows,
    restartsOnHelper: 0,
  };
}
