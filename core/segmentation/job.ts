/**
 * Segmentation jobs over prepared data, shaped like the nightly run: train on
 * a uniform sample (k-means++ restarts, best inertia wins), then assign every
 * row to the nearest trained centroid. The flat Float64Array layout keeps a
 * million rows in one allocation and the hot loop free of per-row objects.
 */
import { z } from 'zod';
import { assignAll, checkMatrix, flattenCentroids, unflattenCentroids } from './assign.js';
import { KSELECT_DEFAULTS, selectK } from './kselect.js';
import { cohesionFigures } from './cohesion.js';
import { PARENT_RULE_DEFAULTS, ParentRuleSchema, buildHierarchy } from './hierarchy.js';
import { describeSegments } from './labels.js';
import { SegmentAlgorithmSchema, parseSegmentModel } from './model.js';
import type { SegmentModel } from './model.js';
import { FeatureSpecListSchema, fitPreparation, prepareMatrix } from './prepare.js';
import type { FeatureRow } from './prepare.js';
import { deriveSeed, sampleIndices, takeRows } from './random.js';
import { assignShared } from './restart-thread.js';
import { TRAIN_DEFAULTS, trainKMeans } from './train.js';
import { HIERARCHICAL_DEFAULTS, wardTrainer } from './hierarchical.js';
import { parseOrThrow } from './validate.js';

export interface SegmentationJobOptions {
  k: number;
  /** Rows drawn uniformly (without replacement) to train on; default defaultSampleSize(nRows). */
  sampleSize?: number;
  seed: number;
  nInit?: number;
  /** Rows of the sample the k-means++ restarts run on; default defaultRestartRows(sampleSize). */
  restartRows?: number;
  maxIterations?: number;
  /**
   * Lloyd passes over all rows after training on the sample (default 0: the
   * nightly job assigns with the sample's centroids, in BigQuery, in one pass).
   */
  refinePasses?: number;
  /**
   * Restarts may share the work with a helper thread (default true; see trainKMeans), and so may
   * the assignment of every row when `matrix` is on a SharedArrayBuffer.
   */
  parallel?: boolean;
}

/**
 * The training sample grows with the data: 5% of the rows, at least 5,000 and
 * at most 50,000. The k-means++ restarts run on a tenth of the sample, 500 to
 * TRAIN_DEFAULTS.restartRows (2,000) rows, so their fixed cost (ml-kmeans'
 * k-means++ is the slowest step per row) stays small beside the assignment of
 * every row; each restart is ranked by its inertia on 5,000 rows of the sample
 * (TRAIN_DEFAULTS.rankRows; the whole sample below 10,000). These are the
 * smallest settings that kept bench:segment's inertia level with scikit-learn's:
 * fewer restarts, fewer restart rows, or ranking restarts on their own rows lost
 * quality on some seeds (docs/benchmarks.md). The nightly activities draw a
 * sample of defaultSampleSize(customers) unless SEGFLOW_SEGMENT_SAMPLE_SIZE is
 * set, and train on defaultRestartRows of it.
 */
export const JOB_DEFAULTS = {
  sampleShare: 0.05,
  minSample: 5_000,
  maxSample: 50_000,
  restartShare: 0.1,
  minRestartRows: 500,
  nInit: 8,
  refinePasses: 0,
} as const;

export function defaultSampleSize(nRows: number): number {
  return Math.min(nRows, Math.max(JOB_DEFAULTS.minSample, Math.min(JOB_DEFAULTS.maxSample, Math.round(nRows * JOB_DEFAULTS.sampleShare))));
}

/** Rows of the sample the restarts run on (trainKMeans restarts on all of them when that is over half the sample). */
export function defaultRestartRows(sampleSize: number): number {
  return Math.max(JOB_DEFAULTS.minRestartRows, Math.min(TRAIN_DEFAULTS.restartRows, Math.round(sampleSize * JOB_DEFAULTS.restartShare)));
}

export interface SegmentationJobResult {
  k: number;
  centroids: number[][];
  labels: Int32Array;
  /** Sum of squared distances of every row to its centroid. */
  inertia: number;
  sizes: number[];
  sampleSize: number;
  /** Rows of the sample the restarts ran on (all of it when the subsample would be over half). */
  restartRows: number;
  /** Rows of the sample the restarts were ranked on. */
  rankRows: number;
  trainInertia: number;
  trainIterations: number;
  /** Inertia of each restart on the rows they were ranked on (rankRows of the sample), in restart order. */
  restartInertias: number[];
  /** Restarts that ran on the helper thread. */
  restartsOnHelper: number;
  /** Rows the helper thread assigned (0 unless the matrix is on a SharedArrayBuffer). */
  rowsAssignedOnHelper: number;
  refinePasses: number;
  timingsMs: { sample: number; train: number; assign: number; total: number };
}

/**
 * Train on a sample and assign all rows: what the nightly run does, in one
 * process (the production path assigns in BigQuery instead). `matrix` holds
 * prepared rows, row-major.
 */
export function runSegmentationJob(
  matrix: Float64Array,
  nRows: number,
  dim: number,
  options: SegmentationJobOptions,
): SegmentationJobResult {
  checkMatrix(matrix, nRows, dim);
  const t0 = performance.now();
  const sampleSize = Math.min(options.sampleSize ?? defaultSampleSize(nRows), nRows);
  // The whole matrix when the sample would be all of it: no copy.
  const indices = sampleSize < nRows ? sampleIndices(nRows, sampleSize, deriveSeed(options.seed, 1_000_003)) : null;
  const sample = indices ? takeRows(matrix, dim, indices) : matrix;
  const t1 = performance.now();
  const restartRows = options.restartRows ?? defaultRestartRows(sampleSize);
  const trained = trainKMeans(sample, sampleSize, dim, {
    k: options.k,
    seed: options.seed,
    nInit: options.nInit ?? JOB_DEFAULTS.nInit,
    restartRows,
    ...(options.maxIterations !== undefined ? { maxIterations: options.maxIterations } : {}),
    ...(options.parallel !== undefined ? { parallel: options.parallel } : {}),
  });
  const t2 = performance.now();
  const refinePasses = options.refinePasses ?? JOB_DEFAULTS.refinePasses;
  const initial = flattenCentroids(trained.centroids, dim);
  let result: { centroids: Float64Array; labels: Int32Array; inertia: number; sizes: number[]; passes: number };
  let rowsOnHelper = 0;
  if (!indices) {
    // Trained on every row: the training labels already belong to the final centroids.
    result = { centroids: initial, labels: trained.labels, inertia: trained.inertia, sizes: trained.sizes, passes: 0 };
  } else if (refinePasses > 0) {
    // More Lloyd passes over every row (ml-kmeans, started from the trained centroids).
    const refined = trainKMeans(matrix, nRows, dim, {
      k: options.k,
      seed: options.seed,
      nInit: 1,
      maxIterations: refinePasses,
      tolerance: TRAIN_DEFAULTS.tolerance,
      initialCentroids: trained.centroids,
    });
    result = {
      centroids: flattenCentroids(refined.centroids, dim),
      labels: refined.labels,
      inertia: refined.inertia,
      sizes: refined.sizes,
      passes: refined.iterations,
    };
  } else {
    // Half the rows go to the helper thread when the matrix is on a SharedArrayBuffer (see restart-thread.ts).
    const { labels, inertia, sizes, onHelper } =
      options.parallel === false ? { ...assignAll(matrix, nRows, dim, initial), onHelper: 0 } : assignShared(matrix, nRows, dim, initial);
    result = { centroids: initial, labels, inertia, sizes, passes: 0 };
    rowsOnHelper = onHelper;
  }
  const t3 = performance.now();
  return {
    k: options.k,
    centroids: unflattenCentroids(result.centroids, dim),
    labels: result.labels,
    inertia: result.inertia,
    sizes: result.sizes,
    sampleSize,
    restartRows: trained.restartRows,
    rankRows: trained.rankRows,
    trainInertia: trained.inertia,
    trainIterations: trained.iterations,
    restartInertias: trained.runs.map((r) => r.inertia),
    restartsOnHelper: trained.restartsOnHelper,
    rowsAssignedOnHelper: rowsOnHelper,
    refinePasses: result.passes,
    timingsMs: { sample: t1 - t0, train: t2 - t1, assign: t3 - t2, total: t3 - t0 },
  };
}

export const SegmentationSettingsSchema = z.object({
  features: FeatureSpecListSchema,
  algorithm: SegmentAlgorithmSchema.default('kmeans'),
  /** Rows the Ward tree is built on (hierarchical only). */
  hierarchicalSampleSize: z.number().int().min(2).default(HIERARCHICAL_DEFAULTS.sampleRows),
  kMin: z.number().int().min(1).default(KSELECT_DEFAULTS.kMin),
  kMax: z.number().int().min(1).default(KSELECT_DEFAULTS.kMax),
  /** A business cap on k; k above it is reported but never chosen. */
  maxK: z.number().int().min(1).optional(),
  minSegmentShare: z.number().min(0).max(1).default(KSELECT_DEFAULTS.minSegmentShare),
  silhouetteSampleSize: z.number().int().min(2).default(KSELECT_DEFAULTS.silhouetteSampleSize),
  tolerance: z.number().min(0).default(KSELECT_DEFAULTS.tolerance),
  stabilityResamples: z.number().int().min(2).default(KSELECT_DEFAULTS.stabilityResamples),
  stabilitySampleSize: z.number().int().min(2).default(KSELECT_DEFAULTS.stabilitySampleSize),
  minStability: z.number().min(-1).max(1).default(KSELECT_DEFAULTS.minStability),
  nInit: z.number().int().min(1).default(TRAIN_DEFAULTS.nInit),
  maxIterations: z.number().int().min(1).default(TRAIN_DEFAULTS.maxIterations),
  seed: z.number().int().nonnegative().default(20261126),
  /** How many parent groups the hierarchy over the segments keeps (hierarchy.ts). */
  parentSegments: ParentRuleSchema.default(PARENT_RULE_DEFAULTS),
});
export type SegmentationSettings = z.output<typeof SegmentationSettingsSchema>;
export type SegmentationSettingsInput = z.input<typeof SegmentationSettingsSchema>;

/**
 * The nightly training step, pure: fit preparation on the extracted training
 * rows, choose k, label the segments and return a validated artifact. Ids are
 * centroid indices here; carry ids and labels over from the current model with
 * stability.ts before promoting.
 */
export function trainSegmentModel(
  rows: readonly FeatureRow[],
  settingsInput: SegmentationSettingsInput,
  meta: { version: string; createdAt: Date | string },
): SegmentModel {
  const settings = parseOrThrow(SegmentationSettingsSchema, settingsInput, 'segmentation settings');
  const preparation = fitPreparation(rows, settings.features);
  const dim = preparation.features.length;
  const matrix = prepareMatrix(preparation, rows);
  const { selection, fit } = selectK(matrix, rows.length, dim, {
    seed: settings.seed,
    kMin: settings.kMin,
    kMax: settings.kMax,
    ...(settings.maxK !== undefined ? { maxK: settings.maxK } : {}),
    minSegmentShare: settings.minSegmentShare,
    silhouetteSampleSize: settings.silhouetteSampleSize,
    tolerance: settings.tolerance,
    stabilityResamples: settings.stabilityResamples,
    stabilitySampleSize: settings.stabilitySampleSize,
    minStability: settings.minStability,
    labelSegments: (centroids, sizes) => describeSegments(preparation, centroids, sizes).map((s) => s.label),
    nInit: settings.nInit,
    maxIterations: settings.maxIterations,
    ...(settings.algorithm === 'hierarchical'
      ? { trainer: wardTrainer({ seed: settings.seed, sampleRows: settings.hierarchicalSampleSize }) }
      : {}),
  });
  const chosen = selection.candidates.find((c) => c.k === selection.chosen_k);
  const createdAt = typeof meta.createdAt === 'string' ? meta.createdAt : meta.createdAt.toISOString();
  const segments = describeSegments(preparation, fit.centroids, fit.sizes);
  return parseSegmentModel({
    version: meta.version,
    created_at: createdAt,
    features: settings.features,
    preparation,
    centroids: fit.centroids,
    segments,
    hierarchy: buildHierarchy({ preparation, centroids: fit.centroids, segments }, settings.parentSegments),
    k_selection: selection,
    metrics: { inertia: fit.inertia, silhouette: chosen?.silhouette ?? 0 },
    cohesion: cohesionFigures(matrix, rows.length, dim, fit.centroids, {
      seed: settings.seed,
      silhouetteSampleSize: settings.silhouetteSampleSize,
    }),
    training: {
      algorithm: settings.algorithm,
      sample_size: rows.length,
      seed: settings.seed,
      n_init: settings.algorithm === 'hierarchical' ? 1 : settings.nInit,
      iterations: fit.iterations,
      converged: fit.converged,
    },
  });
}
