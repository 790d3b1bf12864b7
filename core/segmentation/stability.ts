/**
 * Model-to-model stability: carry segment ids and labels over from the current
 * model to a retrained one (Hungarian matching on centroid distance), measure
 * how much the segmentation moved, and decide whether to promote.
 *
 * Figures work from a contingency table (customers per current id x new id),
 * which BigQuery can produce with one GROUP BY over both assignments, so
 * millions of customers never need to come into a worker.
 */
import { munkres } from 'munkres';
import { z } from 'zod';
import { renumberHierarchy } from './hierarchy.js';
import type { SegmentModel } from './model.js';
import { parseSegmentModel } from './model.js';
import { translateVector } from './prepare.js';
import { adjustedRandIndexFromTable, changedShareFromTable } from './agreement.js';
import type { ContingencyCell } from './agreement.js';
import { parseOrThrow } from './validate.js';

// ---------------------------------------------------------------- matching

export interface SegmentMatch {
  /** Index of the segment in the candidate model. */
  candidateIndex: number;
  /** Index of the matched current segment, or null for a new segment. */
  currentIndex: number | null;
  /** Euclidean distance between the matched centroids, in the candidate's prepared space. */
  distance: number | null;
}

function euclidean(a: readonly number[], b: readonly number[]): number {
  let d = 0;
  for (let j = 0; j < a.length; j++) {
    const t = a[j]! - b[j]!;
    d += t * t;
  }
  return Math.sqrt(d);
}

/**
 * Optimal one-to-one matching of candidate centroids to current centroids by
 * Euclidean distance (Hungarian algorithm; k may differ). Pairs further apart
 * than `maxDistance` are not the same group and stay unmatched.
 */
export function matchCentroids(
  current: readonly (readonly number[])[],
  candidate: readonly (readonly number[])[],
  maxDistance = Infinity,
): SegmentMatch[] {
  const matches: SegmentMatch[] = candidate.map((_, i) => ({ candidateIndex: i, currentIndex: null, distance: null }));
  if (current.length === 0 || candidate.length === 0) return matches;
  const cost = candidate.map((c) => current.map((p) => euclidean(c, p)));
  for (const [row, col] of munkres(cost)) {
    const distance = cost[row]![col]!;
    if (distance <= maxDistance) matches[row] = { candidateIndex: row, currentIndex: col, distance };
  }
  return matches;
}

/**
 * The current model's centroids expressed in the candidate's prepared space
 * (back to raw units with the current scaler, forward with the candidate's),
 * so drift is measured on one ruler even when the scaler was refitted.
 */
export function currentCentroidsInCandidateSpace(current: SegmentModel, candidate: SegmentModel): number[][] {
  const names = candidate.preparation.features.map((f) => f.name).join(',');
  const currentNames = current.preparation.features.map((f) => f.name).join(',');
  if (names !== currentNames) {
    throw new Error(
      `stability: models ${current.version} and ${candidate.version} use different features ([${currentNames}] vs [${names}]); ` +
        'their segments cannot be matched. Promote the candidate as a new segmentation instead.',
    );
  }
  return current.centroids.map((c) => translateVector(current.preparation, candidate.preparation, c));
}

export interface RelabelResult {
  model: SegmentModel;
  matches: SegmentMatch[];
}

/**
 * Gives matched candidate segments the current segment's id and label; new
 * segments get fresh ids above every current id and keep their rule-based
 * label (suffixed if a carried-over label already uses it).
 */
export function relabelFromCurrent(
  current: SegmentModel,
  candidate: SegmentModel,
  options: {
    /** Centroids further apart than this (candidate prepared space) are different groups. */
    maxDistance?: number;
    /** First id for new segments; pass one above every id ever issued so retired ids are never reused. */
    nextId?: number;
  } = {},
): RelabelResult {
  const currentInSpace = currentCentroidsInCandidateSpace(current, candidate);
  const matches = matchCentroids(currentInSpace, candidate.centroids, options.maxDistance ?? Infinity);
  let nextId = Math.max(options.nextId ?? 0, Math.max(-1, ...current.segments.map((s) => s.id)) + 1);
  const taken = new Set<string>();
  const carried = matches.map((m) => (m.currentIndex === null ? null : current.segments[m.currentIndex]!));
  for (const c of carried) if (c) taken.add(c.label);
  const segments = candidate.segments.map((s, i) => {
    const from = carried[i];
    if (from) return { ...s, id: from.id, label: from.label };
    let label = s.label;
    for (let n = 2; taken.has(label); n++) label = `${s.label} ${n}`;
    taken.add(label);
    return { ...s, id: nextId++, label };
  });
  const hierarchy = candidate.hierarchy
    ? renumberHierarchy(
        candidate.hierarchy,
        candidate.segments.map((s) => s.id),
        segments.map((s) => s.id),
      )
    : undefined;
  return { model: parseSegmentModel({ ...candidate, segments, ...(hierarchy ? { hierarchy } : {}) }), matches };
}

// ---------------------------------------------------------------- agreement

export { adjustedRandIndex, adjustedRandIndexFromTable, changedShareFromTable, contingencyTable } from './agreement.js';
export type { ContingencyCell } from './agreement.js';

// ---------------------------------------------------------------- figures and policy

export const StabilityFiguresSchema = z.object({
  current_version: z.string(),
  candidate_version: z.string(),
  customers: z.number().int().nonnegative(),
  changed_share: z.number().min(0).max(1),
  adjusted_rand_index: z.number(),
  centroid_drift: z.array(z.object({ id: z.number().int(), distance: z.number().nonnegative() })),
  max_centroid_drift: z.number().nonnegative(),
  size_shifts: z.array(z.object({ id: z.number().int(), current_share: z.number(), candidate_share: z.number(), delta: z.number() })),
  max_size_shift: z.number().nonnegative(),
  new_segment_ids: z.array(z.number().int()),
  retired_segment_ids: z.array(z.number().int()),
});
export type StabilityFigures = z.infer<typeof StabilityFiguresSchema>;

/**
 * Stability of a relabelled candidate against the current model. `table`
 * counts customers by (current id, candidate id) over the same customers;
 * drift is measured in the candidate's prepared space.
 */
export function stabilityFigures(current: SegmentModel, candidate: SegmentModel, table: readonly ContingencyCell[]): StabilityFigures {
  const currentInSpace = currentCentroidsInCandidateSpace(current, candidate);
  const currentIndexById = new Map(current.segments.map((s, i) => [s.id, i]));
  const candidateIds = new Set(candidate.segments.map((s) => s.id));

  const drift = candidate.segments.flatMap((s, i) => {
    const ci = currentIndexById.get(s.id);
    return ci === undefined ? [] : [{ id: s.id, distance: euclidean(candidate.centroids[i]!, currentInSpace[ci]!) }];
  });

  let customers = 0;
  const currentCounts = new Map<number, number>();
  const candidateCounts = new Map<number, number>();
  for (const cell of table) {
    customers += cell.customers;
    currentCounts.set(cell.current_id, (currentCounts.get(cell.current_id) ?? 0) + cell.customers);
    candidateCounts.set(cell.candidate_id, (candidateCounts.get(cell.candidate_id) ?? 0) + cell.customers);
  }
  const share = (counts: Map<number, number>, id: number) => (customers > 0 ? (counts.get(id) ?? 0) / customers : 0);
  const allIds = [...new Set([...current.segments.map((s) => s.id), ...candidateIds])].sort((a, b) => a - b);
  const sizeShifts = allIds.map((id) => {
    const cur = share(currentCounts, id);
    const cand = share(candidateCounts, id);
    return { id, current_share: cur, candidate_share: cand, delta: cand - cur };
  });

  return {
    current_version: current.version,
    candidate_version: candidate.version,
    customers,
    changed_share: changedShareFromTable(table),
    adjusted_rand_index: adjustedRandIndexFromTable(table),
    centroid_drift: drift,
    max_centroid_drift: Math.max(0, ...drift.map((d) => d.distance)),
    size_shifts: sizeShifts,
    max_size_shift: Math.max(0, ...sizeShifts.map((s) => Math.abs(s.delta))),
    new_segment_ids: candidate.segments.filter((s) => !currentIndexById.has(s.id)).map((s) => s.id),
    retired_segment_ids: current.segments.filter((s) => !candidateIds.has(s.id)).map((s) => s.id),
  };
}

export const StabilityThresholdsSchema = z.object({
  /** Most customers allowed to change segment. */
  maxChangedShare: z.number().min(0).max(1).default(0.15),
  /** Least agreement allowed between old and new assignments. */
  minAdjustedRandIndex: z.number().min(-1).max(1).default(0.7),
  /** Largest centroid move allowed (prepared space). */
  maxCentroidDrift: z.number().nonnegative().default(0.25),
  /** Largest change of one segment's share allowed (absolute, e.g. 0.05 = 5 points). */
  maxSizeShift: z.number().min(0).max(1).default(0.05),
  /** Whether segments may appear or disappear. */
  allowSegmentChanges: z.boolean().default(false),
});
export type StabilityThresholds = z.output<typeof StabilityThresholdsSchema>;

export interface StabilityBreach {
  metric: 'changed_share' | 'adjusted_rand_index' | 'max_centroid_drift' | 'max_size_shift' | 'segments';
  value: number;
  threshold: number;
  message: string;
}

export function checkStability(
  figures: StabilityFigures,
  thresholdsInput: z.input<typeof StabilityThresholdsSchema> = {},
): StabilityBreach[] {
  const t = parseOrThrow(StabilityThresholdsSchema, thresholdsInput, 'stability thresholds');
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const breaches: StabilityBreach[] = [];
  if (figures.changed_share > t.maxChangedShare) {
    breaches.push({
      metric: 'changed_share',
      value: figures.changed_share,
      threshold: t.maxChangedShare,
      message: `${pct(figures.changed_share)} of customers would change segment; at most ${pct(t.maxChangedShare)} is allowed`,
    });
  }
  if (figures.adjusted_rand_index < t.minAdjustedRandIndex) {
    breaches.push({
      metric: 'adjusted_rand_index',
      value: figures.adjusted_rand_index,
      threshold: t.minAdjustedRandIndex,
      message: `adjusted Rand index ${figures.adjusted_rand_index.toFixed(3)} is below ${t.minAdjustedRandIndex}`,
    });
  }
  if (figures.max_centroid_drift > t.maxCentroidDrift) {
    const worst = figures.centroid_drift.reduce((a, b) => (b.distance > a.distance ? b : a));
    breaches.push({
      metric: 'max_centroid_drift',
      value: figures.max_centroid_drift,
      threshold: t.maxCentroidDrift,
      message: `segment ${worst.id} centroid moved ${figures.max_centroid_drift.toFixed(3)}; at most ${t.maxCentroidDrift} is allowed`,
    });
  }
  if (figures.max_size_shift > t.maxSizeShift) {
    const worst = figures.size_shifts.reduce((a, b) => (Math.abs(b.delta) > Math.abs(a.delta) ? b : a));
    breaches.push({
      metric: 'max_size_shift',
      value: figures.max_size_shift,
      threshold: t.maxSizeShift,
      message: `segment ${worst.id} share moved from ${pct(worst.current_share)} to ${pct(worst.candidate_share)}; at most ${pct(t.maxSizeShift)} points is allowed`,
    });
  }
  const structural = figures.new_segment_ids.length + figures.retired_segment_ids.length;
  if (!t.allowSegmentChanges && structural > 0) {
    breaches.push({
      metric: 'segments',
      value: structural,
      threshold: 0,
      message: `segments would change: new [${figures.new_segment_ids.join(', ')}], retired [${figures.retired_segment_ids.join(', ')}]`,
    });
  }
  return breaches;
}

export const PromotionPolicySchema = z.enum(['promote_with_alert', 'hold']);
export type PromotionPolicy = z.infer<typeof PromotionPolicySchema>;

export interface PromotionDecision {
  promote: boolean;
  alert: boolean;
  reason: string;
}

/**
 * A stable candidate is always promoted. An unstable one is promoted with an
 * alert (customers follow the data, a human reviews) or held back (the current
 * model keeps serving until a human promotes), per policy.
 */
export function decidePromotion(breaches: readonly StabilityBreach[], policy: PromotionPolicy): PromotionDecision {
  if (breaches.length === 0) return { promote: true, alert: false, reason: 'within every stability threshold' };
  const summary = breaches.map((b) => b.message).join('; ');
  return policy === 'promote_with_alert'
    ? { promote: true, alert: true, reason: `promoted despite instability: ${summary}` }
    : { promote: false, alert: true, reason: `held: ${summary}` };
}
