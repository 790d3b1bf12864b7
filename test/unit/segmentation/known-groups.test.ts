import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignCustomer } from '../../../core/segmentation/assign.js';
import { bootstrapStability, planBootstrap } from '../../../core/segmentation/bootstrap.js';
import { trainSegmentModel } from '../../../core/segmentation/job.js';
import { repeatedLabels } from '../../../core/segmentation/labels.js';
import { adjustedRandIndex } from '../../../core/segmentation/stability.js';
import { blobs, groupRows, PERSONA_FEATURES } from './fixtures.js';

// Groups of different sizes and spreads, with 3% of rows belonging to none; k is searched over 2..12 each time.
const CASES = [
  { sizes: [220, 90, 150], spreads: [1, 0.6, 1.3] },
  { sizes: [200, 80, 140, 110, 170, 60], spreads: [1, 0.7, 1.2, 0.9, 1.1, 0.8] },
  { sizes: [160, 70, 120, 90, 140, 60, 100, 80, 130], spreads: [1, 0.7, 1.2, 0.9, 1.1, 0.8, 1, 0.9, 0.7] },
];

for (const { sizes, spreads } of CASES) {
  test(`${sizes.length} well-separated groups: k = ${sizes.length}, each group found, no label repeated`, () => {
    const { rows, truth } = groupRows(sizes, spreads, 0.03, 11 + sizes.length);
    const model = trainSegmentModel(
      rows,
      { features: PERSONA_FEATURES, kMin: 2, kMax: 12, silhouetteSampleSize: 800, seed: 7 },
      { version: `groups-${sizes.length}`, createdAt: '2026-11-26T02:00:00Z' },
    );
    const table = JSON.stringify(model.k_selection.candidates);
    assert.equal(model.k_selection.chosen_k, sizes.length, table);
    assert.equal(model.k_selection.chosen_by, 'smallest_within_tolerance');
    const labels = model.segments.map((s) => s.label);
    assert.equal(new Set(labels).size, labels.length);
    assert.deepEqual(repeatedLabels(labels), [], labels.join(', '));
    const predicted = rows.map((r) => assignCustomer(model, r).index);
    const inGroups = [...truth.keys()].filter((i) => truth[i]! >= 0);
    const ari = adjustedRandIndex(
      inGroups.map((i) => truth[i]!),
      inGroups.map((i) => predicted[i]!),
    );
    assert.ok(ari >= 0.9, `ARI ${ari}`);
    // Every candidate carries its stability, and the chosen k reproduces.
    const chosen = model.k_selection.candidates.find((c) => c.k === sizes.length)!;
    assert.ok((chosen.stability ?? 0) >= 0.9, table);
    assert.ok(model.cohesion && model.cohesion.segments.length === sizes.length);
  });
}

test('the bootstrap tells a real group from a split of one: stable at the true k, unstable beyond', () => {
  const centres = [
    [0, 0],
    [10, 0],
    [0, 10],
  ];
  const { matrix, nRows, dim } = blobs(centres, 100, 1, 21);
  const plan = planBootstrap(matrix, nRows, dim, { seed: 5, resamples: 4, sampleSize: 300, nInit: 2 });
  assert.equal(plan.draws.length, 4);
  const three = bootstrapStability(plan, 3)!;
  const six = bootstrapStability(plan, 6)!;
  assert.ok(three > 0.99, String(three));
  assert.ok(six < 0.8, String(six));
  // Seeded: the same plan gives the same figure.
  assert.equal(bootstrapStability(planBootstrap(matrix, nRows, dim, { seed: 5, resamples: 4, sampleSize: 300, nInit: 2 }), 6), six);
  assert.throws(() => planBootstrap(matrix, nRows, dim, { seed: 5, resamples: 1, sampleSize: 300, nInit: 2 }), /at least 2 resamples/);
});

test('repeated labels are the numbered ones beside their base label', () => {
  assert.deepEqual(repeatedLabels(['low engagement', 'low engagement 2', 'mainstream', 'low engagement 3']), [
    'low engagement 2',
    'low engagement 3',
  ]);
  assert.deepEqual(repeatedLabels(['new', 'at risk', 'mainstream']), []);
  // A number alone is not a repeat: there must be the label it repeats.
  assert.deepEqual(repeatedLabels(['top 100', 'new']), []);
});
