/**
 * Nearest-centroid assignment: one customer at a time (real-time path) and
 * every row of a flat matrix (training, benchmarks).
 *
 * Both paths, and the SQL in sql.ts, compute a squared distance the same way:
 * d = 0; for j in 0..dim-1: t = x[j] - c[j]; d += t * t — left to right, no
 * expansion into |x|^2 - 2x.c + |c|^2 — and pick the smallest d with a strict
 * `<`, so a tie goes to the lowest centroid index. Keeping the arithmetic
 * identical is what lets batch (BigQuery) and real-time (TypeScript)
 * assignment agree exactly.
 */
import { parentSegmentOf } from './hierarchy.js';
import type { SegmentModel } from './model.js';
import { applyPreparation } from './prepare.js';
import type { FeatureRow, FeatureValue } from './prepare.js';

/** Centroids either as the model stores them or flattened row-major (k * dim). */
export type CentroidsInput = Float64Array | readonly (readonly number[])[];

export function flattenCentroids(centroids: CentroidsInput, dim: number): Float64Array {
  if (centroids instanceof Float64Array) {
    if (centroids.length === 0 || centroids.length % dim !== 0) {
      throw new Error(
        `centroids: expected a non-empty flat array whose length is a multiple of dim ${dim}, got length ${centroids.length}`,
      );
    }
    return centroids;
  }
  if (centroids.length === 0) throw new Error('centroids: expected at least one centroid, got none');
  const flat = new Float64Array(centroids.length * dim);
  centroids.forEach((c, i) => {
    if (c.length !== dim) throw new Error(`centroids: centroid ${i} has ${c.length} values, expected ${dim}`);
    flat.set(c, i * dim);
  });
  return flat;
}

export function unflattenCentroids(flat: Float64Array, dim: number): number[][] {
  const k = flat.length / dim;
  return Array.from({ length: k }, (_, c) => Array.from(flat.subarray(c * dim, (c + 1) * dim)));
}

export interface NearestResult {
  index: number;
  /** Squared Euclidean distance to the winning centroid (prepared space). */
  distance: number;
  /** Second-smallest minus smallest distance; null when there is one centroid. A margin near 0 flags a near tie. */
  margin: number | null;
}

/** The nearest centroid to one prepared vector; ties go to the lowest index. */
export function nearestCentroid(vector: ArrayLike<number>, centroids: CentroidsInput): NearestResult {
  const dim = vector.length;
  const flat = flattenCentroids(centroids, dim);
  const k = flat.length / dim;
  let best = 0;
  let bestD = Infinity;
  let secondD = Infinity;
  for (let c = 0; c < k; c++) {
    const base = c * dim;
    let d = 0;
    for (let j = 0; j < dim; j++) {
      const t = (vector[j] as number) - (flat[base + j] as number);
      d += t * t;
    }
    if (d < bestD) {
      secondD = bestD;
      bestD = d;
      best = c;
    } else if (d < secondD) {
      secondD = d;
    }
  }
  return { index: best, distance: bestD, margin: k > 1 ? secondD - bestD : null };
}

export interface BulkAssignment {
  labels: Int32Array;
  /** Sum of squared distances of every row to its centroid. */
  inertia: number;
  sizes: number[];
}

/**
 * Assigns every row of a flat row-major matrix (nRows * dim) to its nearest
 * centroid: the hot loop of training and of the benchmark.
 */
export function assignAll(matrix: Float64Array, nRows: number, dim: number, centroids: CentroidsInput): BulkAssignment {
  const labels = new Int32Array(nRows);
  const { inertia, sizes } = assignInto(matrix, nRows, dim, flattenCentroids(centroids, dim), labels, null);
  return { labels, inertia, sizes };
}

/**
 * The bulk kernel. Four centroids are scored side by side so the CPU overlaps
 * four independent add chains; each chain still sums its own terms in j order,
 * so every distance is bit-identical to nearestCentroid's. When `sums` is given
 * (k * dim), each row is also added to its centroid's sum, for a Lloyd update
 * in the same pass.
 */
export function assignInto(
  matrix: Float64Array,
  nRows: number,
  dim: number,
  flat: Float64Array,
  labels: Int32Array,
  sums: Float64Array | null,
): { inertia: number; sizes: number[] } {
  checkMatrix(matrix, nRows, dim);
  const k = flat.length / dim;
  if (!Number.isInteger(k) || k < 1) throw new Error(`assign: expected k * dim centroid values, got ${flat.length} for dim ${dim}`);
  if (labels.length < nRows) throw new Error(`assign: labels hold ${labels.length} rows, expected ${nRows}`);
  if (sums && sums.length !== k * dim) throw new Error(`assign: sums hold ${sums.length} values, expected ${k * dim}`);
  const blocks = Math.ceil(k / 4);
  // Lane q of block b holds centroid 4b+q, interleaved by dimension; missing lanes sit at
  // infinity, so their distance is +Infinity and never wins a strict `<`.
  const lanes = new Float64Array(blocks * dim * 4).fill(Infinity);
  for (let c = 0; c < k; c++) {
    const b = c >> 2;
    const q = c & 3;
    for (let j = 0; j < dim; j++) lanes[(b * dim + j) * 4 + q] = flat[c * dim + j]!;
  }
  const sizes = new Array<number>(k).fill(0);
  let inertia = 0;
  for (let r = 0; r < nRows; r++) {
    const row = r * dim;
    let best = 0;
    let bestD = Infinity;
    for (let b = 0; b < blocks; b++) {
      let d0 = 0;
      let d1 = 0;
      let d2 = 0;
      let d3 = 0;
      let p = b * dim * 4;
      for (let j = 0; j < dim; j++, p += 4) {
        const x = matrix[row + j]!;
        const t0 = x - lanes[p]!;
        const t1 = x - lanes[p + 1]!;
        const t2 = x - lanes[p + 2]!;
        const t3 = x - lanes[p + 3]!;
        d0 += t0 * t0;
        d1 += t1 * t1;
        d2 += t2 * t2;
        d3 += t3 * t3;
      }
      const c0 = b * 4;
      if (d0 < bestD) {
        bestD = d0;
        best = c0;
      }
      if (d1 < bestD) {
        bestD = d1;
        best = c0 + 1;
      }
      if (d2 < bestD) {
        bestD = d2;
        best = c0 + 2;
      }
      if (d3 < bestD) {
        bestD = d3;
        best = c0 + 3;
      }
    }
    labels[r] = best;
    sizes[best]! += 1;
    inertia += bestD;
    if (sums) {
      const s = best * dim;
      for (let j = 0; j < dim; j++) sums[s + j]! += matrix[row + j]!;
    }
  }
  return { inertia, sizes };
}

export function checkMatrix(matrix: Float64Array, nRows: number, dim: number): void {
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`matrix: expected dim >= 1, got ${dim}`);
  if (!Number.isInteger(nRows) || nRows < 0) throw new Error(`matrix: expected nRows >= 0, got ${nRows}`);
  if (matrix.length < nRows * dim) {
    throw new Error(`matrix: expected at least nRows * dim = ${nRows * dim} values, got ${matrix.length}`);
  }
}

export interface CustomerAssignment extends NearestResult {
  /** Stable segment id from the model (what profiles, webhooks and SQL output carry). */
  segmentId: number;
  label: string;
  /** The parent segment (the level above in the model's hierarchy); null for a model trained without one. */
  parent: { id: number; label: string } | null;
  modelVersion: string;
  /** The prepared feature vector the decision was made on, for explanations and audits. */
  vector: number[];
}

/** Real-time assignment of one customer with a model: prepare, then nearest centroid. */
export function assignCustomer(model: SegmentModel, row: FeatureRow): CustomerAssignment {
  const vector = applyPreparation(model.preparation, row);
  const nearest = nearestCentroid(vector, model.centroids);
  const segment = model.segments[nearest.index];
  if (!segment) {
    throw new Error(`model ${model.version}: centroid ${nearest.index} has no segment entry; the artifact is inconsistent`);
  }
  return {
    ...nearest,
    segmentId: segment.id,
    label: segment.label,
    parent: parentSegmentOf(model, segment.id),
    modelVersion: model.version,
    vector,
  };
}

/**
 * The row assignment reads for one customer: the numeric features, plus the attributes
 * (demographics: age, gender, country, income_band) that categorical, ordinal and numeric
 * features may name; a value in `features` wins over an attribute of the same name.
 */
export function customerFeatureRow(
  features: Readonly<Record<string, number | null>>,
  attributes: Readonly<Record<string, unknown>> | null | undefined,
): FeatureRow {
  const row: Record<string, FeatureValue> = {};
  for (const [k, v] of Object.entries(attributes ?? {})) {
    if (typeof v === 'string' || typeof v === 'number') row[k] = v;
  }
  return { ...row, ...features };
}
