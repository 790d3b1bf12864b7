/**
 * Bootstrap stability of a k: do the segments reproduce when the data is drawn again?
 * Each resample draws the stability rows with replacement, k-means is fitted on it, and
 * every stability row is assigned to that fit's nearest centroid; the stability of k is the
 * mean adjusted Rand index over every pair of resample fits (the same rows, two labellings).
 * A k that splits one real group in two splits it a different way on each resample, and its
 * index falls; a k that finds real groups finds the same ones every time.
 */
import { createRng } from '../random.js';
import { assignAll } from './assign.js';
import { deriveSeed, sampleIndices, takeRows } from './random.js';
import { meanPairwiseAdjustedRandIndex } from './agreement.js';
import { trainKMeans } from './train.js';
import type { Trainer } from './train.js';

export interface BootstrapOptions {
  seed: number;
  /** Resamples (fits) per k; their pairs are compared, so at least 2. */
  resamples: number;
  /** Rows drawn (without replacement) from the training rows for every resample to draw from. */
  sampleSize: number;
  /** k-means++ restarts per resample fit. */
  nInit: number;
  maxIterations?: number;
  /** The algorithm fitted on each resample (default trainKMeans). */
  trainer?: Trainer;
}

/** The rows the resamples draw from and the resamples themselves, shared by every k so k compare on the same draws. */
export interface BootstrapPlan {
  rows: Float64Array;
  nRows: number;
  dim: number;
  /** One row-index array (into `rows`, with repeats) per resample. */
  draws: Int32Array[];
  seed: number;
  nInit: number;
  maxIterations?: number;
  trainer?: Trainer;
  /** Each resample's rows, drawn once and kept so a trainer that caches per matrix (hierarchical.ts) reuses its work across k. */
  resampled: (Float64Array | undefined)[];
}

export function planBootstrap(matrix: Float64Array, nRows: number, dim: number, options: BootstrapOptions): BootstrapPlan {
  if (!Number.isInteger(options.resamples) || options.resamples < 2) {
    throw new Error(`bootstrap: expected at least 2 resamples (pairs of fits are compared), got ${options.resamples}`);
  }
  const idx = sampleIndices(nRows, options.sampleSize, deriveSeed(options.seed, 6_700_417));
  const rows = takeRows(matrix, dim, idx);
  const m = idx.length;
  const draws = Array.from({ length: options.resamples }, (_, b) => {
    const rng = createRng(deriveSeed(options.seed, 2_147_483 + b));
    const draw = new Int32Array(m);
    for (let i = 0; i < m; i++) draw[i] = rng.int(0, m - 1);
    return draw;
  });
  return {
    rows,
    nRows: m,
    dim,
    draws,
    seed: options.seed,
    nInit: options.nInit,
    ...(options.maxIterations !== undefined ? { maxIterations: options.maxIterations } : {}),
    ...(options.trainer !== undefined ? { trainer: options.trainer } : {}),
    resampled: [],
  };
}

/**
 * Mean pairwise adjusted Rand index of fits (k-means unless the plan names a trainer) on the plan's resamples, or null when a
 * resample cannot hold k segments (fewer than k distinct rows).
 */
export function bootstrapStability(plan: BootstrapPlan, k: number): number | null {
  const { rows, nRows, dim } = plan;
  const labellings: Int32Array[] = [];
  for (let b = 0; b < plan.draws.length; b++) {
    const resample = plan.resampled[b] ?? takeRows(rows, dim, plan.draws[b]!);
    plan.resampled[b] = resample;
    let fit;
    try {
      fit = (plan.trainer ?? trainKMeans)(resample, nRows, dim, {
        k,
        seed: deriveSeed(plan.seed, k * 1_000 + b),
        nInit: plan.nInit,
        parallel: false,
        ...(plan.maxIterations !== undefined ? { maxIterations: plan.maxIterations } : {}),
      });
    } catch {
      return null;
    }
    labellings.push(assignAll(rows, nRows, dim, fit.centroids).labels);
  }
  return meanPairwiseAdjustedRandIndex(labellings);
}
