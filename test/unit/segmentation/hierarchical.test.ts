import assert from 'node:assert/strict';
import { test } from 'node:test';
import { agnes } from 'ml-hclust';
import { assignCustomer } from '../../../core/segmentation/assign.js';
import { adjustedRandIndex } from '../../../core/segmentation/agreement.js';
import { cutMeans, wardTrainer, wardTreeOfRows } from '../../../core/segmentation/hierarchical.js';
import { trainSegmentModel } from '../../../core/segmentation/job.js';
import { selectK } from '../../../core/segmentation/kselect.js';
import { PERSONA_FEATURES, PERSONAS, blobs, personaRows } from './fixtures.js';

const three = blobs(
  [
    [0, 0],
    [6, 0],
    [0, 6],
  ],
  60,
  0.5,
  11,
);

test('a Ward cut at k finds well separated groups; the centroids are the groups means', () => {
  const { matrix, nRows, dim, truth } = three;
  const fit = wardTrainer({ seed: 1 })(matrix, nRows, dim, { k: 3, seed: 9 });
  assert.equal(adjustedRandIndex(truth, fit.labels), 1);
  assert.deepEqual(fit.sizes, [60, 60, 60]);
  for (let c = 0; c < 3; c++) {
    const members = [...fit.labels.keys()].filter((i) => fit.labels[i] === c);
    for (let q = 0; q < dim; q++) {
      const mean = members.reduce((a, i) => a + matrix[i * dim + q]!, 0) / members.length;
      assert.ok(Math.abs(mean - fit.centroids[c]![q]!) < 1e-9, `centroid ${c}[${q}] ${fit.centroids[c]![q]} vs mean ${mean}`);
    }
  }
});

test('cutMeans cuts ml-hclust ward2 at k groups: the same leaves as Cluster.group', () => {
  const { matrix, nRows, dim } = three;
  const rows = Array.from({ length: nRows }, (_, r) => [matrix[r * dim]!, matrix[r * dim + 1]!]);
  const reference = agnes(rows, { method: 'ward2' })
    .group(3)
    .children.map((g) => g.indices().length);
  const tree = wardTreeOfRows(matrix, nRows, dim);
  assert.deepEqual(
    tree
      .group(3)
      .children.map((g) => g.indices().length)
      .sort(),
    reference.sort(),
  );
  assert.equal(cutMeans(tree, matrix, dim, 5).length, 5);
});

test('the tree is built on at most sampleRows rows, and every row is still assigned to its nearest mean', () => {
  const { matrix, nRows, dim, truth } = three;
  const fit = wardTrainer({ seed: 4, sampleRows: 40 })(matrix, nRows, dim, { k: 3, seed: 1 });
  assert.equal(fit.restartRows, 40);
  assert.equal(fit.labels.length, nRows);
  assert.ok(adjustedRandIndex(truth, fit.labels) > 0.95);
});

test('selectK with the Ward trainer applies the same rules and chooses k = 3', () => {
  const { matrix, nRows, dim } = three;
  const { selection } = selectK(matrix, nRows, dim, { seed: 3, kMin: 2, kMax: 6, trainer: wardTrainer({ seed: 3 }) });
  assert.equal(selection.chosen_k, 3, JSON.stringify(selection.candidates));
  assert.ok(
    selection.candidates.every((c) => c.stability !== null),
    'stability measured for each k',
  );
});

test('a hierarchical model of the personas: k = 5, ARI >= 0.9, the artifact says which algorithm trained it', () => {
  const { rows, truth } = personaRows(120, 2026);
  const model = trainSegmentModel(
    rows,
    { features: PERSONA_FEATURES, algorithm: 'hierarchical', kMin: 2, kMax: 8, silhouetteSampleSize: 600, seed: 7 },
    { version: 'v20261126T020000Z', createdAt: '2026-11-26T02:00:00Z' },
  );
  assert.equal(model.training.algorithm, 'hierarchical');
  assert.equal(model.training.n_init, 1);
  assert.equal(model.k_selection.chosen_k, PERSONAS.length, JSON.stringify(model.k_selection.candidates));
  const ari = adjustedRandIndex(
    truth,
    rows.map((r) => assignCustomer(model, r).index),
  );
  assert.ok(ari >= 0.9, `ARI ${ari}`);
});
