/**
 * Agreement between two labellings of the same rows: the contingency table and the adjusted
 * Rand index. Model-to-model stability (stability.ts) and the bootstrap stability of a
 * candidate k (bootstrap.ts) both measure with it.
 */

/** Customers per (current segment id, candidate segment id). */
export interface ContingencyCell {
  current_id: number;
  candidate_id: number;
  customers: number;
}

/** Builds the contingency table from two aligned assignments (one entry per customer). */
export function contingencyTable(current: ArrayLike<number>, candidate: ArrayLike<number>): ContingencyCell[] {
  if (current.length !== candidate.length) {
    throw new Error(
      `contingencyTable: assignments differ in length (${current.length} vs ${candidate.length}); align them by customer first`,
    );
  }
  const cells = new Map<string, ContingencyCell>();
  for (let i = 0; i < current.length; i++) {
    const a = current[i]!;
    const b = candidate[i]!;
    const key = `${a}|${b}`;
    const cell = cells.get(key);
    if (cell) cell.customers += 1;
    else cells.set(key, { current_id: a, candidate_id: b, customers: 1 });
  }
  return [...cells.values()].sort((x, y) => x.current_id - y.current_id || x.candidate_id - y.candidate_id);
}

const pairs = (n: number) => (n * (n - 1)) / 2;

/**
 * Adjusted Rand index (Hubert & Arabie) from a contingency table:
 * (sum_ij C(n_ij,2) - E) / ((sum_i C(a_i,2) + sum_j C(b_j,2)) / 2 - E),
 * E = sum_i C(a_i,2) * sum_j C(b_j,2) / C(n,2). When the denominator is 0
 * (both partitions trivial in the same way) the partitions are identical and
 * the index is 1, as in scikit-learn.
 */
export function adjustedRandIndexFromTable(table: readonly ContingencyCell[]): number {
  const rowSums = new Map<number, number>();
  const colSums = new Map<number, number>();
  let n = 0;
  let index = 0;
  for (const cell of table) {
    if (!Number.isInteger(cell.customers) || cell.customers < 0) {
      throw new Error(`adjustedRandIndex: expected a non-negative integer count, got ${cell.customers}`);
    }
    n += cell.customers;
    index += pairs(cell.customers);
    rowSums.set(cell.current_id, (rowSums.get(cell.current_id) ?? 0) + cell.customers);
    colSums.set(cell.candidate_id, (colSums.get(cell.candidate_id) ?? 0) + cell.customers);
  }
  if (n < 2) return 1;
  let sumA = 0;
  for (const a of rowSums.values()) sumA += pairs(a);
  let sumB = 0;
  for (const b of colSums.values()) sumB += pairs(b);
  const expected = (sumA * sumB) / pairs(n);
  const max = (sumA + sumB) / 2;
  if (max === expected) return 1;
  return (index - expected) / (max - expected);
}

export function adjustedRandIndex(current: ArrayLike<number>, candidate: ArrayLike<number>): number {
  return adjustedRandIndexFromTable(contingencyTable(current, candidate));
}

/** Mean adjusted Rand index over every pair of labellings of the same rows (bootstrap stability); needs at least two. */
export function meanPairwiseAdjustedRandIndex(labellings: readonly ArrayLike<number>[]): number {
  if (labellings.length < 2) throw new Error(`meanPairwiseAdjustedRandIndex: expected at least 2 labellings, got ${labellings.length}`);
  let total = 0;
  let pairs = 0;
  for (let a = 0; a < labellings.length; a++) {
    for (let b = a + 1; b < labellings.length; b++) {
      total += adjustedRandIndex(labellings[a]!, labellings[b]!);
      pairs++;
    }
  }
  return total / pairs;
}

/** Share of customers whose segment id differs (ids already carried over by relabelFromCurrent). */
export function changedShareFromTable(table: readonly ContingencyCell[]): number {
  let n = 0;
  let changed = 0;
  for (const cell of table) {
    n += cell.customers;
    if (cell.current_id !== cell.candidate_id) changed += cell.customers;
  }
  return n > 0 ? changed / n : 0;
}
