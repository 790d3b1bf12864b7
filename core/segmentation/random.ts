/**
 * Seeded sampling for segmentation. Every random choice (training sample,
 * k-means restarts, silhouette sample) flows from one configured seed, so a
 * nightly run can be reproduced bit for bit from its model artifact.
 */
import { createRng } from '../random.js';

/**
 * A child seed for stream `index` of `seed`. Hashing (rather than seed + index)
 * keeps restart i of seed s from replaying restart i-1 of seed s+1. Not the
 * string-hashing deriveSeed of core/random.ts: trained models are pinned to this one.
 */
export function deriveSeed(seed: number, index: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  // ml-random's XSadd treats 0 like any other seed, but keep seeds positive so they read well in artifacts.
  return h === 0 ? 1 : h;
}

/**
 * `size` distinct row indices out of `n`, uniformly, in increasing order
 * (Knuth's selection sampling: one pass, no set, and sorted output keeps the
 * later row copy cache-friendly). Returns all rows when size >= n.
 */
export function sampleIndices(n: number, size: number, seed: number): Int32Array {
  if (!Number.isInteger(n) || n < 0) throw new Error(`sampleIndices: expected a row count >= 0, got ${n}`);
  const m = Math.max(0, Math.min(Math.floor(size), n));
  const out = new Int32Array(m);
  if (m === n) {
    for (let i = 0; i < n; i++) out[i] = i;
    return out;
  }
  const { next } = createRng(seed);
  let chosen = 0;
  for (let i = 0; i < n && chosen < m; i++) {
    if (next() * (n - i) < m - chosen) out[chosen++] = i;
  }
  return out;
}

/** Copies the rows named by `indices` out of a flat row-major matrix. */
export function takeRows(matrix: Float64Array, dim: number, indices: Int32Array): Float64Array {
  const out = new Float64Array(indices.length * dim);
  for (let r = 0; r < indices.length; r++) {
    const src = (indices[r] as number) * dim;
    out.set(matrix.subarray(src, src + dim), r * dim);
  }
  return out;
}
