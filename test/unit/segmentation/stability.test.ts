import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignCustomer } from '../../../core/segmentation/assign.js';
import { trainSegmentModel } from '../../../core/segmentation/job.js';
import type { SegmentModel } from '../../../core/segmentation/model.js';
import {
  adjustedRandIndex,
  adjustedRandIndexFromTable,
  changedShareFromTable,
  checkStability,
  contingencyTable,
  decidePromotion,
  matchCentroids,
  relabelFromCurrent,
  stabilityFigures,
} from '../../../core/segmentation/stability.js';
import { PERSONA_FEATURES, personaRows } from './fixtures.js';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);

test('ARI: identical partitions, renamed clusters and hand-computed cases', () => {
  close(adjustedRandIndex([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2]), 1);
  close(adjustedRandIndex([0, 0, 1, 1, 2, 2], [5, 5, 3, 3, 9, 9]), 1);
  // Table {(0,0):2, (1,1):1, (1,2):1}: index 1, sums 2 and 1, C(4,2)=6, E=1/3, max=3/2 -> (2/3)/(7/6) = 4/7.
  close(adjustedRandIndex([0, 0, 1, 1], [0, 0, 1, 2]), 4 / 7);
  // Every pair split differently: index 0, E=2/3, max=2 -> -1/2.
  close(adjustedRandIndex([0, 0, 1, 1], [0, 1, 0, 1]), -0.5);
  // Table [[3,1],[1,3]] over 8 points: index 6, sums 12 and 12, C(8,2)=28, E=36/7, max=12 -> (6/7)/(48/7) = 1/8.
  close(adjustedRandIndex([0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 0, 1, 1, 1]), 0.125);
  // One cluster against all singletons: no agreement beyond chance.
  close(adjustedRandIndex([0, 0, 0, 0], [0, 1, 2, 3]), 0);
  // Both trivial in the same way: identical partitions.
  close(adjustedRandIndex([1, 1, 1], [4, 4, 4]), 1);
  // The table form (what BigQuery's GROUP BY returns) gives the same answer.
  const table = contingencyTable([0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 0, 1, 1, 1]);
  assert.deepEqual(table, [
    { current_id: 0, candidate_id: 0, customers: 3 },
    { current_id: 0, candidate_id: 1, customers: 1 },
    { current_id: 1, candidate_id: 0, customers: 1 },
    { current_id: 1, candidate_id: 1, customers: 3 },
  ]);
  close(adjustedRandIndexFromTable(table), 0.125);
  close(changedShareFromTable(table), 0.25);
});

test('Hungarian matching minimises total distance where greedy nearest-first would not', () => {
  // Greedy takes X-B (0.9) and is left with Y-A (3.5): 4.4. The optimum is X-A + Y-B = 2.6.
  const matches = matchCentroids([[0], [2]], [[1.1], [3.5]]);
  assert.deepEqual(
    matches.map((m) => m.currentIndex),
    [0, 1],
  );
  // A pair further apart than maxDistance is a new segment, not the same one.
  assert.deepEqual(
    matchCentroids([[0], [2]], [[0.1], [9]], 1).map((m) => m.currentIndex),
    [0, null],
  );
});

const { rows } = personaRows(100, 77);
const current = trainSegmentModel(
  rows,
  { features: PERSONA_FEATURES, kMin: 5, kMax: 5, silhouetteSampleSize: 300, seed: 1 },
  { version: 'seg-1', createdAt: '2026-11-25T02:00:00Z' },
);
// Give the current model ids that aren't just indices, as after a few promotions.
const currentWithIds: SegmentModel = { ...current, segments: current.segments.map((s, i) => ({ ...s, id: 10 + i * 3 })) };

function permuted(model: SegmentModel, order: number[], version: string): SegmentModel {
  return {
    ...model,
    version,
    centroids: order.map((i) => model.centroids[i]!),
    // A fresh training numbers segments by index and may word labels differently.
    segments: order.map((i, pos) => ({ ...model.segments[i]!, id: pos, label: `fresh ${pos}` })),
  };
}

test('relabel: permuted centroids get their old ids and labels back', () => {
  const order = [3, 0, 4, 1, 2];
  const candidate = permuted(currentWithIds, order, 'seg-2');
  const { model, matches } = relabelFromCurrent(currentWithIds, candidate);
  order.forEach((from, pos) => {
    assert.equal(matches[pos]?.currentIndex, from);
    assert.equal(model.segments[pos]?.id, currentWithIds.segments[from]?.id);
    assert.equal(model.segments[pos]?.label, currentWithIds.segments[from]?.label);
    close(matches[pos]?.distance ?? NaN, 0);
  });
  assert.equal(model.version, 'seg-2');
});

test('relabel: an extra segment gets a fresh id and an unclashing label', () => {
  // Built by hand from another model: its hierarchy would not cover the extra segment.
  const { hierarchy: _tree, ...flat } = currentWithIds;
  const extra: SegmentModel = {
    ...flat,
    version: 'seg-3',
    centroids: [...currentWithIds.centroids, currentWithIds.centroids[0]!.map((v) => v * 0.5 + 0.01)],
    segments: [
      ...currentWithIds.segments.map((s, i) => ({ ...s, id: i })),
      { ...currentWithIds.segments[0]!, id: 5, label: currentWithIds.segments[0]!.label },
    ],
    k_selection: { ...currentWithIds.k_selection, chosen_k: 6 },
  };
  const { model } = relabelFromCurrent(currentWithIds, extra);
  assert.deepEqual(
    model.segments.slice(0, 5).map((s) => s.id),
    currentWithIds.segments.map((s) => s.id),
  );
  assert.equal(model.segments[5]?.id, 10 + 4 * 3 + 1);
  assert.equal(model.segments[5]?.label, `${currentWithIds.segments[0]!.label} 2`);
});

test('stability: the same segmentation is stable and promoted; a shaken one breaches and follows the policy', () => {
  const candidate = relabelFromCurrent(currentWithIds, permuted(currentWithIds, [1, 2, 3, 4, 0], 'seg-4')).model;
  const idsOf = (m: SegmentModel) => rows.map((r) => assignCustomer(m, r).segmentId);
  const before = idsOf(currentWithIds);
  const same = stabilityFigures(currentWithIds, candidate, contingencyTable(before, idsOf(candidate)));
  assert.equal(same.changed_share, 0);
  close(same.adjusted_rand_index, 1);
  assert.ok(same.max_centroid_drift < 1e-12);
  assert.equal(same.max_size_shift, 0);
  assert.deepEqual(checkStability(same), []);
  assert.deepEqual(decidePromotion([], 'hold'), { promote: true, alert: false, reason: 'within every stability threshold' });

  // Move every fourth customer to another segment.
  const ids = currentWithIds.segments.map((s) => s.id);
  const shaken = before.map((id, i) => (i % 4 === 0 ? ids[(ids.indexOf(id) + 1) % ids.length]! : id));
  const figures = stabilityFigures(currentWithIds, candidate, contingencyTable(before, shaken));
  close(figures.changed_share, 125 / 500);
  const breaches = checkStability(figures, { maxChangedShare: 0.1, minAdjustedRandIndex: 0.9 });
  assert.deepEqual(
    breaches.map((b) => b.metric).filter((m) => m !== 'max_size_shift'),
    ['changed_share', 'adjusted_rand_index'],
  );
  assert.match(breaches[0]!.message, /25\.0% of customers would change segment; at most 10\.0%/);
  assert.deepEqual([decidePromotion(breaches, 'hold').promote, decidePromotion(breaches, 'hold').alert], [false, true]);
  assert.deepEqual(
    [decidePromotion(breaches, 'promote_with_alert').promote, decidePromotion(breaches, 'promote_with_alert').alert],
    [true, true],
  );
});

test('models with different features cannot be matched, and say so', () => {
  const other: SegmentModel = {
    ...currentWithIds,
    features: currentWithIds.features.slice(1),
    preparation: { ...currentWithIds.preparation, features: currentWithIds.preparation.features.slice(1) },
    centroids: currentWithIds.centroids.map((c) => c.slice(1)),
  };
  assert.throws(() => relabelFromCurrent(currentWithIds, other), /use different features/);
});
