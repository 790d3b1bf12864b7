/**
 * Hierarchical (agglomerative) training: Ward linkage with ml-hclust on a seeded sample of the
 * training rows, the tree cut into k groups, and the model's centroids set to the groups' means.
 * Every row is then assigned to its nearest mean (assign.ts), the rule SQL and real-time
 * assignment use, so a hierarchical model is served exactly like a k-means one. The tree is built
 * once per matrix and cut at every k (selectK tries a range), and the sample is drawn from the
 * trainer's own seed, not the per-k seed, so every k cuts the same tree.
 *
 * ml-hclust's agglomeration costs about n^3 operations, so the tree is built on at most
 * `sampleRows` rows (HIERARCHICAL_DEFAULTS); the means are then taken over those rows.
 */
import { agnes } from 'ml-hclust';
import type { Cluster } from 'ml-hclust';
import { assignAll, checkMatrix, flattenCentroids } from './assign.js';
import { deriveSeed, sampleIndices, takeRows } from './random.js';
import type { TrainOptions, TrainResult, Trainer } from './train.js';

export const HIERARCHICAL_DEFAULTS = { sampleRows: 1000 } as const;

interface Tree {
  root: Cluster;
  /** The rows the tree was built on (a copy of the sample, row-major). */
  rows: Float64Array;
  nRows: number;
}

function rowsOf(matrix: Float64Array, nRows: number, dim: number): number[][] {
  return Array.from({ length: nRows }, (_, r) => Array.from(matrix.subarray(r * dim, (r + 1) * dim)));
}

/** Ward's linkage on Euclidean distances ("ward2" in ml-hclust, R's ward.D2, scipy's ward). */
export function wardTreeOfRows(matrix: Float64Array, nRows: number, dim: number): Cluster {
  checkMatrix(matrix, nRows, dim);
  return agnes(rowsOf(matrix, nRows, dim), { method: 'ward2' });
}

/** Means of the k groups of a cut of `tree` (leaf indices into `rows`), in the cut's order. */
export function cutMeans(tree: Cluster, rows: Float64Array, dim: number, k: number): number[][] {
  const groups = tree.group(k).children;
  if (groups.length < k) throw new Error(`hierarchical: the tree has ${groups.length} leaves, fewer than k=${k}`);
  return groups.map((g) => {
    const mean = new Array<number>(dim).fill(0);
    const leaves = g.isLeaf ? [g.index] : g.indices();
    for (const i of leaves) for (let q = 0; q < dim; q++) mean[q]! += rows[i * dim + q]! / leaves.length;
    return mean;
  });
}

/**
 * A Trainer (the shape selectK and the bootstrap call) that cuts a Ward tree instead of running
 * k-means. Trees are cached per matrix for the trainer's lifetime; `nInit`, `maxIterations` and
 * the per-k seed do not apply.
 */
export function wardTrainer(options: { seed: number; sampleRows?: number }): Trainer {
  const sampleRows = options.sampleRows ?? HIERARCHICAL_DEFAULTS.sampleRows;
  if (!Number.isInteger(sampleRows) || sampleRows < 2) throw new Error(`hierarchical: expected sampleRows >= 2, got ${sampleRows}`);
  const trees = new WeakMap<Float64Array, Tree>();
  const treeFor = (matrix: Float64Array, nRows: number, dim: number): Tree => {
    const cached = trees.get(matrix);
    if (cached && cached.nRows <= nRows) return cached;
    const sample = nRows > sampleRows ? takeRows(matrix, dim, sampleIndices(nRows, sampleRows, deriveSeed(options.seed, 92_821))) : matrix;
    const n = Math.min(nRows, sampleRows);
    const tree = { root: wardTreeOfRows(sample, n, dim), rows: sample, nRows: n };
    trees.set(matrix, tree);
    return tree;
  };
  return (matrix: Float64Array, nRows: number, dim: number, train: TrainOptions): TrainResult => {
    checkMatrix(matrix, nRows, dim);
    const { k } = train;
    if (!Number.isInteger(k) || k < 1) throw new Error(`hierarchical: expected an integer k >= 1, got ${k}`);
    if (nRows < k) throw new Error(`hierarchical: k=${k} needs at least ${k} training rows, got ${nRows}`);
    const tree = treeFor(matrix, nRows, dim);
    const centroids = cutMeans(tree.root, tree.rows, dim, k);
    const scored = assignAll(matrix, nRows, dim, flattenCentroids(centroids, dim));
    // Duplicate rows can make a cut group's mean equal another's; nearest-mean assignment then empties one.
    if (scored.sizes.some((s) => s === 0)) {
      throw new Error(`hierarchical: k=${k} leaves a group with no nearest rows (fewer than ${k} distinct groups). Lower k.`);
    }
    return {
      k,
      centroids,
      inertia: scored.inertia,
      sizes: scored.sizes,
      labels: scored.labels,
      iterations: 0,
      converged: true,
      seed: options.seed,
      // One fit: the cut (artifacts count it as n_init 1).
      runs: [{ seed: options.seed, inertia: scored.inertia, iterations: 0, converged: true }],
      restartRows: tree.nRows,
      rankRows: nRows,
      restartsOnHelper: 0,
    };
  };
}
