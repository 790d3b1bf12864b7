/**
 * Comparing algorithms on one prepared sample: K-Means and hierarchical (Ward) with k chosen by
 * the same rule as the nightly run (kselect.ts), and DBSCAN with eps from the k-distance knee.
 * For each: clusters, sizes, the share left as noise, mean silhouette, Davies-Bouldin,
 * Calinski-Harabasz and bootstrap stability; then a recommendation with its reason.
 *
 * Figures are computed the same way for the three: on each algorithm's own labels, with the
 * clusters' means as centroids, over the clustered rows (DBSCAN's noise rows left out, and
 * counted in `noise_share` instead).
 */
import dbscan from '@cdxoo/dbscan';
import { checkMatrix } from './assign.js';
import { meanPairwiseAdjustedRandIndex } from './agreement.js';
import { planBootstrap } from './bootstrap.js';
import type { BootstrapPlan } from './bootstrap.js';
import { calinskiHarabasz, daviesBouldin } from './cohesion.js';
import { wardTrainer } from './hierarchical.js';
import { KSELECT_DEFAULTS, PairwiseDistances, elbowK, selectK } from './kselect.js';
import type { KSelectionOptions } from './kselect.js';
import { deriveSeed, sampleIndices, takeRows } from './random.js';

export const COMPARED_ALGORITHMS = ['kmeans', 'hierarchical', 'dbscan'] as const;
export type ComparedAlgorithm = (typeof COMPARED_ALGORITHMS)[number];

export interface CompareOptions extends Pick<
  KSelectionOptions,
  | 'kMin'
  | 'kMax'
  | 'minSegmentShare'
  | 'silhouetteSampleSize'
  | 'tolerance'
  | 'stabilityResamples'
  | 'stabilitySampleSize'
  | 'minStability'
  | 'nInit'
  | 'labelSegments'
> {
  seed: number;
  /** Rows the Ward tree is built on. */
  hierarchicalSampleSize?: number;
  /** DBSCAN's minimum neighbourhood (the row itself included); default max(4, 2 x dimensions). */
  minPoints?: number;
  /** DBSCAN's radius; default the k-distance knee (dbscanEps). */
  eps?: number;
  /** DBSCAN is recommended only when it leaves at most this share of rows as noise (they would have no segment). */
  maxNoiseShare?: number;
}

export const COMPARE_DEFAULTS = { maxNoiseShare: 0.05, minPointsFloor: 4 } as const;

export interface AlgorithmReport {
  algorithm: ComparedAlgorithm;
  /** How its parameters were set, e.g. `k=5 (smallest within tolerance)` or `eps=0.41 (k-distance knee), minPts=16`. */
  parameters: string;
  clusters: number;
  /** Rows per cluster, largest first. */
  sizes: number[];
  noise_share: number;
  /** Null when fewer than two clusters (no separation to measure). */
  silhouette: number | null;
  davies_bouldin: number | null;
  calinski_harabasz: number | null;
  /** Mean adjusted Rand index between fits on bootstrap resamples; null when not measurable. */
  stability: number | null;
  /** Cluster of every sample row, -1 for noise. */
  labels: Int32Array;
}

export interface Comparison {
  rows: number;
  dim: number;
  reports: AlgorithmReport[];
  recommendation: { algorithm: ComparedAlgorithm; reason: string };
}

function sqDistance(a: Float64Array, i: number, b: Float64Array, j: number, dim: number): number {
  let d = 0;
  for (let q = 0; q < dim; q++) {
    const t = a[i * dim + q]! - b[j * dim + q]!;
    d += t * t;
  }
  return d;
}

/** Every row's distance to its (minPoints - 1)-th nearest other row: the k-distance of Ester et al. */
export function kDistances(matrix: Float64Array, nRows: number, dim: number, minPoints: number): Float64Array {
  checkMatrix(matrix, nRows, dim);
  const kth = Math.min(minPoints - 1, nRows - 1);
  const out = new Float64Array(nRows);
  const row = new Float64Array(nRows);
  for (let i = 0; i < nRows; i++) {
    for (let j = 0; j < nRows; j++) row[j] = j === i ? Infinity : sqDistance(matrix, i, matrix, j, dim);
    row.sort();
    out[i] = Math.sqrt(row[Math.max(0, kth - 1)]!);
  }
  return out;
}

/**
 * DBSCAN's eps by the k-distance knee: the k-distances sorted from largest to smallest fall
 * steeply over the sparse rows (noise) and flatten inside clusters; eps is the value at the
 * knee (the point furthest below the chord, the rule kselect.ts's elbowK applies to inertia).
 * The median k-distance when the curve has no knee.
 */
export function dbscanEps(matrix: Float64Array, nRows: number, dim: number, minPoints: number): number {
  const sorted = Array.from(kDistances(matrix, nRows, dim, minPoints)).sort((a, b) => b - a);
  const knee = elbowK(sorted.map((d, i) => ({ k: i + 1, inertia: d })));
  const eps = knee === null ? sorted[Math.floor(sorted.length / 2)]! : sorted[knee - 1]!;
  // All rows alike: any positive radius joins them.
  return eps > 0 ? eps : Number.MIN_VALUE;
}

/** DBSCAN (@cdxoo/dbscan) over the rows; labels in cluster order of discovery, -1 for noise. */
export function runDbscan(matrix: Float64Array, nRows: number, dim: number, eps: number, minPoints: number): Int32Array {
  checkMatrix(matrix, nRows, dim);
  const eps2 = eps * eps;
  const { clusters } = dbscan({
    dataset: Array.from({ length: nRows }, (_, i) => i),
    epsilon: eps2,
    // Squared distances against eps^2, inclusive as in scikit-learn.
    distanceFunction: (a: number, b: number) => sqDistance(matrix, a, matrix, b, dim),
    epsilonCompare: (d: number, e: number) => d <= e,
    minimumPoints: minPoints,
  });
  const labels = new Int32Array(nRows).fill(-1);
  clusters.forEach((members, c) => {
    for (const i of members) labels[i] = c;
  });
  return labels;
}

/**
 * DBSCAN labels of `target` rows from a fit on `fitRows`: the cluster of the nearest core row of
 * the fit within eps, else noise (DBSCAN's own rule for a row that was not in the fit).
 */
function dbscanPredict(
  fitRows: Float64Array,
  nFit: number,
  fitLabels: Int32Array,
  target: Float64Array,
  nTarget: number,
  dim: number,
  eps: number,
  minPoints: number,
): Int32Array {
  const eps2 = eps * eps;
  const core: number[] = [];
  for (let i = 0; i < nFit; i++) {
    if (fitLabels[i]! < 0) continue;
    let n = 0;
    for (let j = 0; j < nFit && n < minPoints; j++) if (sqDistance(fitRows, i, fitRows, j, dim) <= eps2) n++;
    if (n >= minPoints) core.push(i);
  }
  const out = new Int32Array(nTarget).fill(-1);
  for (let t = 0; t < nTarget; t++) {
    let best = eps2;
    for (const c of core) {
      const d = sqDistance(target, t, fitRows, c, dim);
      if (d <= best) {
        best = d;
        out[t] = fitLabels[c]!;
      }
    }
  }
  return out;
}

/**
 * DBSCAN's bootstrap stability: on each resample's distinct rows (a repeated row would count as
 * density) eps is chosen again by the knee rule, the fit labels the stability rows (dbscanPredict,
 * noise a label of its own), and the pairs of labellings are compared by adjusted Rand index.
 */
function dbscanStability(plan: BootstrapPlan, minPoints: number): number | null {
  const { rows, nRows, dim } = plan;
  const labellings = plan.draws.map((draw) => {
    const distinct = Int32Array.from(new Set(draw)).sort();
    const fitRows = takeRows(rows, dim, distinct);
    const eps = dbscanEps(fitRows, distinct.length, dim, minPoints);
    const fitLabels = runDbscan(fitRows, distinct.length, dim, eps, minPoints);
    return dbscanPredict(fitRows, distinct.length, fitLabels, rows, nRows, dim, eps, minPoints);
  });
  return labellings.length < 2 ? null : meanPairwiseAdjustedRandIndex(labellings);
}

/** Sizes, noise, silhouette, Davies-Bouldin and Calinski-Harabasz of a labelling (-1 = noise). */
export function labellingFigures(
  matrix: Float64Array,
  nRows: number,
  dim: number,
  labels: Int32Array,
  options: { seed: number; silhouetteSampleSize: number },
): Pick<AlgorithmReport, 'clusters' | 'sizes' | 'noise_share' | 'silhouette' | 'davies_bouldin' | 'calinski_harabasz'> {
  checkMatrix(matrix, nRows, dim);
  const clustered = Int32Array.from(labels.keys()).filter((i) => labels[i]! >= 0);
  const ids = [...new Set(Array.from(clustered, (i) => labels[i]!))].sort((a, b) => a - b);
  const dense = new Map(ids.map((id, c) => [id, c]));
  const k = ids.length;
  const rows = takeRows(matrix, dim, clustered);
  const n = clustered.length;
  const own = Int32Array.from(clustered, (i) => dense.get(labels[i]!)!);
  const sizes = new Array<number>(k).fill(0);
  const centroids = new Float64Array(k * dim);
  for (let r = 0; r < n; r++) {
    sizes[own[r]!]! += 1;
    for (let q = 0; q < dim; q++) centroids[own[r]! * dim + q]! += rows[r * dim + q]!;
  }
  for (let c = 0; c < k; c++) for (let q = 0; q < dim; q++) centroids[c * dim + q]! /= sizes[c]!;
  const scatter = new Array<number>(k).fill(0);
  for (let r = 0; r < n; r++) scatter[own[r]!]! += Math.sqrt(sqDistance(rows, r, centroids, own[r]!, dim)) / sizes[own[r]!]!;
  let silhouette: number | null = null;
  if (k >= 2) {
    const sil = sampleIndices(n, options.silhouetteSampleSize, deriveSeed(options.seed, 7919));
    silhouette = new PairwiseDistances(takeRows(rows, dim, sil), sil.length, dim).silhouette(
      Int32Array.from(sil, (i) => own[i]!),
      k,
    );
  }
  return {
    clusters: k,
    sizes: [...sizes].sort((a, b) => b - a),
    noise_share: nRows > 0 ? (nRows - n) / nRows : 0,
    silhouette,
    davies_bouldin: daviesBouldin(centroids, dim, scatter, sizes),
    calinski_harabasz: calinskiHarabasz(rows, n, dim, centroids, own, sizes),
  };
}

const fmt = (x: number | null, digits = 3) => (x === null ? '-' : x.toFixed(digits));

/**
 * The recommendation: of the algorithms that find at least two clusters, reproduce on resamples
 * (stability at the floor) and, for DBSCAN, leave few rows as noise, the one with the highest
 * silhouette; within the k tolerance of it the simpler one wins (K-Means, then hierarchical, then
 * DBSCAN: the order in which they are cheap to train and exact to serve).
 */
export function recommend(
  reports: readonly AlgorithmReport[],
  options: { minStability: number; tolerance: number; maxNoiseShare: number },
): Comparison['recommendation'] {
  const refused = new Map<ComparedAlgorithm, string>();
  for (const r of reports) {
    if (r.clusters < 2 || r.silhouette === null) refused.set(r.algorithm, `${r.algorithm} finds ${r.clusters} cluster(s)`);
    else if (r.stability === null || r.stability < options.minStability) {
      refused.set(r.algorithm, `${r.algorithm} does not reproduce (stability ${fmt(r.stability)} < ${options.minStability})`);
    } else if (r.noise_share > options.maxNoiseShare) {
      refused.set(
        r.algorithm,
        `${r.algorithm} leaves ${(r.noise_share * 100).toFixed(1)}% as noise (> ${(options.maxNoiseShare * 100).toFixed(1)}%)`,
      );
    }
  }
  const passing = reports.filter((r) => !refused.has(r.algorithm));
  const why = [...refused.values()];
  if (passing.length === 0) {
    return {
      algorithm: 'kmeans',
      reason: `none passes (${why.join('; ')}); K-Means stays, as the default, but check the features before trusting any segments`,
    };
  }
  const best = Math.max(...passing.map((r) => r.silhouette!));
  const order = (a: ComparedAlgorithm) => COMPARED_ALGORITHMS.indexOf(a);
  const chosen = passing
    .filter((r) => r.silhouette! >= best - options.tolerance)
    .sort((a, b) => order(a.algorithm) - order(b.algorithm))[0]!;
  const top = passing.find((r) => r.silhouette === best)!;
  const parts = [
    chosen.algorithm === top.algorithm
      ? `the highest silhouette (${fmt(best)}) among those that reproduce (stability ${fmt(chosen.stability)})`
      : `silhouette ${fmt(chosen.silhouette)} within ${options.tolerance} of ${top.algorithm}'s ${fmt(best)}, and simpler (stability ${fmt(chosen.stability)})`,
  ];
  if (why.length > 0) parts.push(why.join('; '));
  if (chosen.algorithm === 'dbscan') {
    parts.push('the nightly run cannot train DBSCAN (its clusters have no centroid to assign new customers to): revisit the features');
  }
  return { algorithm: chosen.algorithm, reason: parts.join('; ') };
}

/** Runs the three algorithms on the same prepared rows and compares them. */
export function compareAlgorithms(matrix: Float64Array, nRows: number, dim: number, options: CompareOptions): Comparison {
  checkMatrix(matrix, nRows, dim);
  const silhouetteSampleSize = options.silhouetteSampleSize ?? KSELECT_DEFAULTS.silhouetteSampleSize;
  const minStability = options.minStability ?? KSELECT_DEFAULTS.minStability;
  const tolerance = options.tolerance ?? KSELECT_DEFAULTS.tolerance;
  const figures = { seed: options.seed, silhouetteSampleSize };
  const { seed: _seed, hierarchicalSampleSize, minPoints: _m, eps: _e, maxNoiseShare: _n, ...kOptions } = options;

  const centroidBased = (algorithm: 'kmeans' | 'hierarchical'): AlgorithmReport => {
    const { selection, fit } = selectK(matrix, nRows, dim, {
      ...kOptions,
      seed: options.seed,
      ...(algorithm === 'hierarchical'
        ? {
            trainer: wardTrainer({
              seed: options.seed,
              ...(hierarchicalSampleSize !== undefined ? { sampleRows: hierarchicalSampleSize } : {}),
            }),
          }
        : {}),
    });
    const chosen = selection.candidates.find((c) => c.k === selection.chosen_k);
    return {
      algorithm,
      parameters: `k=${selection.chosen_k} (${selection.chosen_by.replace(/_/g, ' ')})`,
      ...labellingFigures(matrix, nRows, dim, fit.labels, figures),
      stability: chosen?.stability ?? null,
      labels: fit.labels,
    };
  };

  const minPoints = options.minPoints ?? Math.max(COMPARE_DEFAULTS.minPointsFloor, 2 * dim);
  const eps = options.eps ?? dbscanEps(matrix, nRows, dim, minPoints);
  const dbLabels = runDbscan(matrix, nRows, dim, eps, minPoints);
  const plan = planBootstrap(matrix, nRows, dim, {
    seed: deriveSeed(options.seed, 3571),
    resamples: options.stabilityResamples ?? KSELECT_DEFAULTS.stabilityResamples,
    sampleSize: options.stabilitySampleSize ?? KSELECT_DEFAULTS.stabilitySampleSize,
    nInit: 1,
  });
  const dbReport: AlgorithmReport = {
    algorithm: 'dbscan',
    parameters: `eps=${eps.toPrecision(3)} (${options.eps === undefined ? 'k-distance knee' : 'given'}), minPts=${minPoints}`,
    ...labellingFigures(matrix, nRows, dim, dbLabels, figures),
    stability: dbscanStability(plan, minPoints),
    labels: dbLabels,
  };
  const reports = [centroidBased('kmeans'), centroidBased('hierarchical'), dbReport];
  return {
    rows: nRows,
    dim,
    reports,
    recommendation: recommend(reports, { minStability, tolerance, maxNoiseShare: options.maxNoiseShare ?? COMPARE_DEFAULTS.maxNoiseShare }),
  };
}
