import assert from 'node:assert/strict';
import { test } from 'node:test';
import { calinskiHarabasz, cohesionFigures, daviesBouldin } from '../../../core/segmentation/cohesion.js';
import { checkCohesion, decideRelease } from '../../../core/segmentation/cohesion-gate.js';
import type { Cohesion } from '../../../core/segmentation/cohesion.js';
import type { StabilityBreach } from '../../../core/segmentation/stability.js';

const close = (a: number | null, b: number, what: string) => assert.ok(a !== null && Math.abs(a - b) < 1e-12, `${what}: ${a} != ${b}`);

test('Davies-Bouldin and Calinski-Harabasz match hand computations', () => {
  // Two segments on a line: {0, 2} around 1 and {9, 10, 11} around 10.
  // S = 1 and 2/3, d = 9: DB = (1 + 2/3) / 9 for both. Mean 6.4: between = 2 * 5.4^2 + 3 * 3.6^2 = 97.2,
  // within = 1 + 1 + 1 + 0 + 1 = 4: CH = (97.2 / 1) / (4 / 3) = 72.9.
  const matrix = Float64Array.from([0, 2, 9, 10, 11]);
  const centroids = Float64Array.from([1, 10]);
  close(daviesBouldin(centroids, 1, [1, 2 / 3], [2, 3]), (1 + 2 / 3) / 9, 'DB');
  close(calinskiHarabasz(matrix, 5, 1, centroids, [0, 0, 1, 1, 1], [2, 3]), 72.9, 'CH');
  // Three segments: {0, 2}, {10, 12}, {30}: R_AB = 2/10, R_AC = 1/29, R_BC = 1/19; DB = (0.2 + 0.2 + 1/19) / 3.
  close(daviesBouldin(Float64Array.from([1, 11, 30]), 1, [1, 1, 0], [2, 2, 1]), (0.4 + 1 / 19) / 3, 'DB of three');
  // One segment: neither index is defined.
  assert.equal(daviesBouldin(Float64Array.from([1]), 1, [1], [2]), null);
  assert.equal(calinskiHarabasz(Float64Array.from([0, 2]), 2, 1, Float64Array.from([1]), [0, 0], [2]), null);
});

test('per-segment figures: silhouette, mean distance, nearest centroid', () => {
  // 0 and 1 in segment 0 (centroid 0.5), 4 alone in segment 1: s(0) = 0.75, s(1) = 2/3, s(4) = 0.
  const c = cohesionFigures(Float64Array.from([0, 1, 4]), 3, 1, [[0.5], [4]], { seed: 1, silhouetteSampleSize: 10 });
  close(c.segments[0]!.silhouette, (0.75 + 2 / 3) / 2, 'segment 0 silhouette');
  close(c.segments[1]!.silhouette, 0, 'segment 1 silhouette');
  close(c.silhouette, (0.75 + 2 / 3) / 3, 'model silhouette');
  close(c.segments[0]!.mean_distance, 0.5, 'segment 0 mean distance');
  close(c.segments[1]!.nearest_centroid_distance, 3.5, 'nearest centroid');
  assert.equal(c.segments[1]!.nearest_index, 0);
  close(c.davies_bouldin, 0.5 / 3.5, 'DB');
  // Mean 5/3: between = 2 * (7/6)^2 + (7/3)^2; within = 0.5; CH = between / (0.5 / 1).
  close(c.calinski_harabasz, (2 * (7 / 6) ** 2 + (7 / 3) ** 2) / 0.5, 'CH');
});

function cohesion(silhouette: number, segmentSilhouettes: (number | null)[]): Cohesion {
  return {
    silhouette,
    davies_bouldin: 0.5,
    calinski_harabasz: 100,
    silhouette_rows: 100,
    rows: 1000,
    segments: segmentSilhouettes.map((s, i) => ({
      index: i,
      silhouette: s,
      mean_distance: 0.1,
      nearest_centroid_distance: 0.5,
      nearest_index: i === 0 ? 1 : 0,
    })),
  };
}

const DRIFT: StabilityBreach = {
  metric: 'max_centroid_drift',
  value: 0.4,
  threshold: 0.25,
  message: 'segment 1 centroid moved 0.400; at most 0.25 is allowed',
};

test('a segment with negative mean silhouette holds the model whatever the policy, with one alert naming the gate and the figure', () => {
  const breaches = checkCohesion(cohesion(0.45, [0.6, -0.08, 0.3]), ['new', 'mainstream', 'at risk']);
  assert.equal(breaches.length, 1);
  assert.equal(breaches[0]!.metric, 'segment_silhouette');
  assert.match(breaches[0]!.message, /cohesion gate segment_silhouette: segment 1 "mainstream" has mean silhouette -0\.080, below 0/);
  for (const policy of ['promote_with_alert', 'hold'] as const) {
    const r = decideRelease('v2', 'v1', breaches, [DRIFT], policy);
    assert.equal(r.decisionName, 'hold');
    assert.deepEqual([r.decision.promote, r.decision.alert], [false, true]);
    // One alert, listing the cohesion breach first and the stability breach too.
    assert.equal(r.breaches.length, 2);
    assert.match(r.summary ?? '', /fail the cohesion gate \(segment_silhouette\): held/);
    assert.match(r.decision.reason, /-0\.080.*; segment 1 centroid moved/);
  }
});

test('a model below the silhouette floor is held even as the first model', () => {
  const breaches = checkCohesion(cohesion(0.12, [0.2, 0.1]), ['a', 'b'], { minSilhouette: 0.2 });
  assert.deepEqual(
    breaches.map((b) => [b.metric, b.value, b.threshold]),
    [['model_silhouette', 0.12, 0.2]],
  );
  assert.match(breaches[0]!.message, /mean silhouette 0\.120 is below the floor 0\.2/);
  const r = decideRelease('v1', null, breaches, [], 'promote_with_alert');
  assert.equal(r.decisionName, 'hold');
  assert.ok(r.summary);
});

test('a cohesive model follows the stability policy as before', () => {
  const none = checkCohesion(cohesion(0.5, [0.6, 0.4, null]), ['a', 'b', 'c']);
  assert.deepEqual(none, []);
  assert.deepEqual(decideRelease('v1', null, none, [], 'hold'), {
    decision: { promote: true, alert: false, reason: 'no current model to compare with' },
    decisionName: 'promote',
    breaches: [],
    summary: null,
  });
  const clean = decideRelease('v2', 'v1', none, [], 'hold');
  assert.deepEqual([clean.decisionName, clean.summary], ['promote', null]);
  const moved = decideRelease('v2', 'v1', none, [DRIFT], 'promote_with_alert');
  assert.equal(moved.decisionName, 'promote_with_alert');
  assert.match(moved.summary ?? '', /moved beyond thresholds against v1: promoted with this alert/);
  assert.equal(decideRelease('v2', 'v1', none, [DRIFT], 'hold').decisionName, 'hold');
});
