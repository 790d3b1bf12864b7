/**
 * Choosing k against over-segmentation: train every k in a range and score each by
 * inertia (the elbow), mean silhouette (on a seeded sample) and bootstrap stability
 * (bootstrap.ts). A k is refused when its smallest segment is too small to act on, when
 * its segments do not reproduce on resamples while a smaller k's do, or when the labeller cannot tell its
 * segments apart (a repeated, numbered label). Of the rest, the smallest k whose
 * silhouette is within a tolerance of the best is chosen: an extra segment has to earn
 * its place. The whole table is kept in the model artifact so a reviewer can see why k
 * was chosen.
 */
import { z } from 'zod';
import { assignAll, checkMatrix } from './assign.js';
import { bootstrapStability, planBootstrap } from './bootstrap.js';
import { repeatedLabels } from './labels.js';
import { deriveSeed, sampleIndices, takeRows } from './random.js';
import { trainKMeans } from './train.js';
import type { TrainResult, Trainer } from './train.js';

export const KCandidateSchema = z.object({
  k: z.number().int().positive(),
  inertia: z.number().nonnegative(),
  silhouette: z.number().min(-1).max(1),
  /** Smallest segment's share of the training rows. */
  min_share: z.number().min(0).max(1),
  /** Mean adjusted Rand index between fits on bootstrap resamples; null when not measured (older models, untrainable k). */
  stability: z.number().min(-1).max(1).nullable().optional(),
  rejected_reason: z.string().optional(),
});
export type KCandidate = z.infer<typeof KCandidateSchema>;

export const KSelectionSchema = z.object({
  chosen_k: z.number().int().positive(),
  /** Knee of the inertia curve (max distance below the chord); null with fewer than 3 k or no knee. */
  elbow_k: z.number().int().positive().nullable(),
  /** `smallest_within_tolerance` is today's rule; the others are read from older models. */
  chosen_by: z.enum(['smallest_within_tolerance', 'silhouette', 'silhouette_elbow_tiebreak', 'fixed']),
  /** The settings the rule ran with (absent in older models). */
  rule: z
    .object({
      tolerance: z.number().nonnegative(),
      min_stability: z.number().min(-1).max(1),
      min_segment_share: z.number().min(0).max(1),
      resamples: z.number().int().nonnegative(),
      stability_rows: z.number().int().nonnegative(),
    })
    .optional(),
  candidates: z.array(KCandidateSchema).min(1),
});
export type KSelection = z.infer<typeof KSelectionSchema>;

export interface KSelectionOptions {
  seed: number;
  kMin?: number;
  kMax?: number;
  /** A business cap: k above it is evaluated and reported but never chosen. */
  maxK?: number;
  /** Reject k when any segment holds less than this share of the training rows. */
  minSegmentShare?: number;
  /** Rows scored for the silhouette (it costs O(n^2)). */
  silhouetteSampleSize?: number;
  /** The smallest k whose silhouette is at least the best silhouette minus this is chosen. */
  tolerance?: number;
  /** Bootstrap resamples per k (at least 2: pairs of fits are compared). */
  stabilityResamples?: number;
  /** Training rows the resamples are drawn from. */
  stabilitySampleSize?: number;
  /** k-means++ restarts per resample fit. */
  stabilityNInit?: number;
  /** Refuse k whose bootstrap stability is below this. */
  minStability?: number;
  /**
   * Labels of the segments of a fit (centroids and sizes, in prepared space), to refuse k whose
   * labels repeat; without it labels are not checked (selectK knows no feature roles).
   */
  labelSegments?: (centroids: number[][], sizes: number[]) => string[];
  nInit?: number;
  maxIterations?: number;
  /** The algorithm trained at every k and on every resample (default trainKMeans; hierarchical.ts's wardTrainer). */
  trainer?: Trainer;
}

export const KSELECT_DEFAULTS = {
  kMin: 2,
  kMax: 12,
  minSegmentShare: 0.02,
  silhouetteSampleSize: 2000,
  tolerance: 0.01,
  stabilityResamples: 4,
  stabilitySampleSize: 1000,
  stabilityNInit: 2,
  minStability: 0.8,
  nInit: 3,
} as const;

export interface KSelectionResult {
  selection: KSelection;
  /** The trained model for the chosen k, so it needn't be trained again. */
  fit: TrainResult;
}

/** Thrown when no k passes the guards; carries the table for the alert. */
export class KSelectionError extends Error {
  constructor(
    message: string,
    readonly candidates: KCandidate[],
  ) {
    super(message);
    this.name = 'KSelectionError';
  }
}

/**
 * Euclidean distances between sample rows, upper triangle packed: computed
 * once and reused for every k, since only the labels change between k.
 */
export class PairwiseDistances {
  readonly n: number;
  private readonly packed: Float64Array;

  constructor(matrix: Float64Array, nRows: number, dim: number) {
    checkMatrix(matrix, nRows, dim);
    this.n = nRows;
    this.packed = new Float64Array((nRows * (nRows - 1)) / 2);
    let p = 0;
    for (let i = 0; i < nRows; i++) {
      for (let j = i + 1; j < nRows; j++) {
        let d = 0;
        for (let q = 0; q < dim; q++) {
          const t = matrix[i * dim + q]! - matrix[j * dim + q]!;
          d += t * t;
        }
        this.packed[p++] = Math.sqrt(d);
      }
    }
  }

  /** Mean silhouette of a labelling of the sample rows (labels in 0..k-1). */
  silhouette(labels: ArrayLike<number>, k: number): number {
    const values = this.silhouettes(labels, k);
    if (values === null) return 0;
    let total = 0;
    for (let i = 0; i < this.n; i++) total += values[i]!;
    return total / this.n;
  }

  /** Each sample row's silhouette, or null when fewer than two clusters are present (no structure). */
  silhouettes(labels: ArrayLike<number>, k: number): Float64Array | null {
    const n = this.n;
    if (labels.length !== n) throw new Error(`silhouette: expected ${n} labels, got ${labels.length}`);
    const counts = new Float64Array(k);
    for (let i = 0; i < n; i++) counts[labels[i]!]! += 1;
    let present = 0;
    for (let c = 0; c < k; c++) if (counts[c]! > 0) present++;
    // Silhouette is undefined for a single cluster; treat it as no structure.
    if (present < 2) return null;
    // sums[i * k + c]: total distance from row i to the rows of cluster c.
    const sums = new Float64Array(n * k);
    let p = 0;
    for (let i = 0; i < n; i++) {
      const li = labels[i]!;
      for (let j = i + 1; j < n; j++) {
        const d = this.packed[p++]!;
        sums[i * k + labels[j]!]! += d;
        sums[j * k + li]! += d;
      }
    }
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const own = labels[i]!;
      const ownCount = counts[own]!;
      // A row alone in its cluster scores 0 by definition.
      if (ownCount <= 1) continue;
      const a = sums[i * k + own]! / (ownCount - 1);
      let b = Infinity;
      for (let c = 0; c < k; c++) {
        if (c === own || counts[c]! === 0) continue;
        const m = sums[i * k + c]! / counts[c]!;
        if (m < b) b = m;
      }
      const denom = Math.max(a, b);
      out[i] = denom > 0 ? (b - a) / denom : 0;
    }
    return out;
  }
}

/** Mean silhouette of a labelling (exact, O(n^2)); for a one-off score. */
export function silhouetteScore(matrix: Float64Array, nRows: number, dim: number, labels: ArrayLike<number>, k: number): number {
  return new PairwiseDistances(matrix, nRows, dim).silhouette(labels, k);
}

/**
 * The knee of a decreasing inertia curve: the k whose normalised point lies
 * furthest below the chord from the first to the last point (kneedle's
 * difference curve). Null when there are fewer than 3 points or no point lies
 * below the chord.
 */
export function elbowK(points: readonly { k: number; inertia: number }[]): number | null {
  if (points.length < 3) return null;
  const sorted = [...points].sort((a, b) => a.k - b.k);
  const first = sorted[0]!;
  const last = sorted[sorted.length - 1]!;
  const kSpan = last.k - first.k;
  const iMax = Math.max(...sorted.map((p) => p.inertia));
  const iMin = Math.min(...sorted.map((p) => p.inertia));
  const iSpan = iMax - iMin;
  if (kSpan <= 0 || iSpan <= 0) return null;
  const y0 = (first.inertia - iMin) / iSpan;
  const y1 = (last.inertia - iMin) / iSpan;
  let best: number | null = null;
  let bestGap = 1e-9;
  for (const p of sorted) {
    const x = (p.k - first.k) / kSpan;
    const chord = y0 + (y1 - y0) * x;
    const gap = chord - (p.inertia - iMin) / iSpan;
    if (gap > bestGap) {
      bestGap = gap;
      best = p.k;
    }
  }
  return best;
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

/** Trains every k in [kMin, kMax] on the prepared rows and picks one. */
export function selectK(matrix: Float64Array, nRows: number, dim: number, options: KSelectionOptions): KSelectionResult {
  checkMatrix(matrix, nRows, dim);
  const kMin = options.kMin ?? KSELECT_DEFAULTS.kMin;
  const kMax = options.kMax ?? KSELECT_DEFAULTS.kMax;
  const maxK = options.maxK ?? kMax;
  const minShare = options.minSegmentShare ?? KSELECT_DEFAULTS.minSegmentShare;
  const tolerance = options.tolerance ?? KSELECT_DEFAULTS.tolerance;
  const minStability = options.minStability ?? KSELECT_DEFAULTS.minStability;
  if (!Number.isInteger(kMin) || !Number.isInteger(kMax) || kMin < 1 || kMax < kMin) {
    throw new Error(`selectK: expected integers 1 <= kMin <= kMax, got kMin=${kMin}, kMax=${kMax}`);
  }
  if (nRows < 2) throw new Error(`selectK: expected at least 2 rows, got ${nRows}`);

  const silIdx = sampleIndices(
    nRows,
    options.silhouetteSampleSize ?? KSELECT_DEFAULTS.silhouetteSampleSize,
    deriveSeed(options.seed, 7919),
  );
  const silRows = takeRows(matrix, dim, silIdx);
  const pairwise = new PairwiseDistances(silRows, silIdx.length, dim);
  // One k alone is not compared with anything, so its stability is not worth the fits.
  const plan =
    kMin === kMax
      ? null
      : planBootstrap(matrix, nRows, dim, {
          seed: deriveSeed(options.seed, 3571),
          resamples: options.stabilityResamples ?? KSELECT_DEFAULTS.stabilityResamples,
          sampleSize: options.stabilitySampleSize ?? KSELECT_DEFAULTS.stabilitySampleSize,
          nInit: options.stabilityNInit ?? KSELECT_DEFAULTS.stabilityNInit,
          ...(options.maxIterations !== undefined ? { maxIterations: options.maxIterations } : {}),
          ...(options.trainer !== undefined ? { trainer: options.trainer } : {}),
        });

  const candidates: KCandidate[] = [];
  const fits = new Map<number, TrainResult>();
  for (let k = kMin; k <= kMax; k++) {
    if (k > nRows) {
      candidates.push({ k, inertia: 0, silhouette: 0, min_share: 0, stability: null, rejected_reason: `only ${nRows} rows, fewer than k` });
      continue;
    }
    let fit: TrainResult;
    try {
      fit = (options.trainer ?? trainKMeans)(matrix, nRows, dim, {
        k,
        seed: deriveSeed(options.seed, k),
        ...(options.nInit !== undefined ? { nInit: options.nInit } : { nInit: KSELECT_DEFAULTS.nInit }),
        ...(options.maxIterations !== undefined ? { maxIterations: options.maxIterations } : {}),
      });
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      candidates.push({ k, inertia: 0, silhouette: 0, min_share: 0, stability: null, rejected_reason: `training failed: ${reason}` });
      continue;
    }
    fits.set(k, fit);
    const silLabels = assignAll(silRows, silIdx.length, dim, fit.centroids).labels;
    const silhouette = k === 1 ? 0 : pairwise.silhouette(silLabels, k);
    const stability = plan === null || k === 1 ? null : bootstrapStability(plan, k);
    const smallest = Math.min(...fit.sizes) / nRows;
    // Unstable splits are over-segmentation only beside a smaller k that does reproduce; with none
    // (no stable coarse structure, or a cap below the real number of groups) stability tells k apart no better.
    const stableBelow = candidates.find((c) => c.stability !== null && c.stability !== undefined && c.stability >= minStability)?.k ?? null;
    let rejected: string | undefined;
    if (k === 1) rejected = 'k=1 is not a segmentation';
    else if (k > maxK) rejected = `k above maxK ${maxK}`;
    else if (smallest < minShare) {
      rejected = `smallest segment holds ${pct(smallest)} of customers, below the ${pct(minShare)} minimum`;
    } else if (stability !== null && stability < minStability && stableBelow !== null) {
      rejected = `segments do not reproduce: bootstrap stability ${stability.toFixed(3)} is below ${minStability} (k=${stableBelow} reproduces)`;
    } else if (options.labelSegments) {
      const repeated = repeatedLabels(options.labelSegments(fit.centroids, fit.sizes));
      if (repeated.length > 0) rejected = `labels would repeat (${repeated.join(', ')}): the segments cannot be told apart`;
    }
    candidates.push({
      k,
      inertia: fit.inertia,
      silhouette,
      min_share: smallest,
      stability,
      ...(rejected ? { rejected_reason: rejected } : {}),
    });
  }

  const elbow = elbowK(candidates.filter((c) => fits.has(c.k)));
  const passing = candidates.filter((c) => c.rejected_reason === undefined);
  if (passing.length === 0) {
    throw new KSelectionError(
      `selectK: no k in ${kMin}..${kMax} passed the guards (${candidates.map((c) => `k=${c.k}: ${c.rejected_reason ?? 'ok'}`).join('; ')}). ` +
        'Lower minSegmentShare or the stability floor, narrow the k range, or check the features for a dominating outlier group.',
      candidates,
    );
  }
  // The smallest k close enough to the best: past the point where silhouette stops rising
  // clearly, more segments mostly cut real groups into pieces nobody can act on.
  const bestSil = Math.max(...passing.map((c) => c.silhouette));
  const chosen = passing.filter((c) => c.silhouette >= bestSil - tolerance).reduce((a, b) => (b.k < a.k ? b : a));
  const fit = fits.get(chosen.k);
  if (!fit) throw new Error(`selectK: no fit kept for chosen k=${chosen.k}`);
  return {
    selection: {
      chosen_k: chosen.k,
      elbow_k: elbow,
      chosen_by: kMin === kMax ? 'fixed' : 'smallest_within_tolerance',
      rule: {
        tolerance,
        min_stability: minStability,
        min_segment_share: minShare,
        resamples: plan?.draws.length ?? 0,
        stability_rows: plan?.nRows ?? 0,
      },
      candidates,
    },
    fit,
  };
}
