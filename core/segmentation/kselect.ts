/**
 * Choosing k: train every k in a range, score each by mean silhouette (on a
 * seeded sample) and inertia, reject k whose smallest segment is too small to
 * act on, then take the best silhouette; near-ties go to the k closest to the
 * inertia elbow. The whole table is kept in the model artifact so a reviewer
 * can see why k was chosen.
 */
import { z } from 'zod';
import { assignAll, checkMatrix } from './assign.js';
import { deriveSeed, sampleIndices, takeRows } from './random.js';
import { trainKMeans } from './train.js';
import type { TrainResult } from './train.js';

export const KCandidateSchema = z.object({
  k: z.number().int().positive(),
  inertia: z.number().nonnegative(),
  silhouette: z.number().min(-1).max(1),
  /** Smallest segment's share of the training rows. */
  min_share: z.number().min(0).max(1),
  rejected_reason: z.string().optional(),
});
export type KCandidate = z.infer<typeof KCandidateSchema>;

export const KSelectionSchema = z.object({
  chosen_k: z.number().int().positive(),
  /** Knee of the inertia curve (max distance below the chord); null with fewer than 3 k or no knee. */
  elbow_k: z.number().int().positive().nullable(),
  chosen_by: z.enum(['silhouette', 'silhouette_elbow_tiebreak', 'fixed']),
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
  /** Silhouettes within this distance of the best count as tied. */
  tieTolerance?: number;
  nInit?: number;
  maxIterations?: number;
}

export const KSELECT_DEFAULTS = {
  kMin: 2,
  kMax: 12,
  minSegmentShare: 0.02,
  silhouetteSampleSize: 2000,
  tieTolerance: 0.01,
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
    const n = this.n;
    if (labels.length !== n) throw new Error(`silhouette: expected ${n} labels, got ${labels.length}`);
    const counts = new Float64Array(k);
    for (let i = 0; i < n; i++) counts[labels[i]!]! += 1;
    let present = 0;
    for (let c = 0; c < k; c++) if (counts[c]! > 0) present++;
    // Silhouette is undefined for a single cluster; treat it as no structure.
    if (present < 2) return 0;
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
    let total = 0;
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
      total += denom > 0 ? (b - a) / denom : 0;
    }
    return total / n;
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

/** Trains every k in [kMin, kMax] on the prepared rows and picks one. */
export function selectK(matrix: Float64Array, nRows: number, dim: number, options: KSelectionOptions): KSelectionResult {
  checkMatrix(matrix, nRows, dim);
  const kMin = options.kMin ?? KSELECT_DEFAULTS.kMin;
  const kMax = options.kMax ?? KSELECT_DEFAULTS.kMax;
  const maxK = options.maxK ?? kMax;
  const minShare = options.minSegmentShare ?? KSELECT_DEFAULTS.minSegmentShare;
  const tieTolerance = options.tieTolerance ?? KSELECT_DEFAULTS.tieTolerance;
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

  const candidates: KCandidate[] = [];
  const fits = new Map<number, TrainResult>();
  for (let k = kMin; k <= kMax; k++) {
    if (k > nRows) {
      candidates.push({ k, inertia: 0, silhouette: 0, min_share: 0, rejected_reason: `only ${nRows} rows, fewer than k` });
      continue;
    }
    let fit: TrainResult;
    try {
      fit = trainKMeans(matrix, nRows, dim, {
        k,
        seed: deriveSeed(options.seed, k),
        ...(options.nInit !== undefined ? { nInit: options.nInit } : { nInit: KSELECT_DEFAULTS.nInit }),
        ...(options.maxIterations !== undefined ? { maxIterations: options.maxIterations } : {}),
      });
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      candidates.push({ k, inertia: 0, silhouette: 0, min_share: 0, rejected_reason: `training failed: ${reason}` });
      continue;
    }
    fits.set(k, fit);
    const silLabels = assignAll(silRows, silIdx.length, dim, fit.centroids).labels;
    const silhouette = k === 1 ? 0 : pairwise.silhouette(silLabels, k);
    const smallest = Math.min(...fit.sizes) / nRows;
    let rejected: string | undefined;
    if (k === 1) rejected = 'k=1 is not a segmentation';
    else if (k > maxK) rejected = `k above maxK ${maxK}`;
    else if (smallest < minShare) {
      rejected = `smallest segment holds ${(smallest * 100).toFixed(2)}% of customers, below the ${(minShare * 100).toFixed(2)}% minimum`;
    }
    candidates.push({ k, inertia: fit.inertia, silhouette, min_share: smallest, ...(rejected ? { rejected_reason: rejected } : {}) });
  }

  const elbow = elbowK(candidates.filter((c) => fits.has(c.k)));
  const passing = candidates.filter((c) => c.rejected_reason === undefined);
  if (passing.length === 0) {
    throw new KSelectionError(
      `selectK: no k in ${kMin}..${kMax} passed the guards (${candidates.map((c) => `k=${c.k}: ${c.rejected_reason ?? 'ok'}`).join('; ')}). ` +
        'Lower minSegmentShare, narrow the k range, or check the features for a dominating outlier group.',
      candidates,
    );
  }
  const bestSil = Math.max(...passing.map((c) => c.silhouette));
  const tied = passing.filter((c) => c.silhouette >= bestSil - tieTolerance);
  let chosen: KCandidate;
  let chosenBy: KSelection['chosen_by'];
  if (tied.length === 1) {
    chosen = tied[0]!;
    chosenBy = kMin === kMax ? 'fixed' : 'silhouette';
  } else {
    // Among near-equal silhouettes the elbow says where extra segments stop paying; without one, prefer fewer segments.
    const target = elbow ?? -Infinity;
    chosen = tied.reduce((a, b) => {
      const da = Math.abs(a.k - target);
      const db = Math.abs(b.k - target);
      if (da !== db) return db < da ? b : a;
      return b.k < a.k ? b : a;
    });
    chosenBy = 'silhouette_elbow_tiebreak';
  }
  const fit = fits.get(chosen.k);
  if (!fit) throw new Error(`selectK: no fit kept for chosen k=${chosen.k}`);
  return {
    selection: { chosen_k: chosen.k, elbow_k: elbow, chosen_by: chosenBy, candidates },
    fit,
  };
}
