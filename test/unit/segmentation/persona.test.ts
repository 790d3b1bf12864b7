import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignCustomer } from '../../../core/segmentation/assign.js';
import { JOB_DEFAULTS, runSegmentationJob, trainSegmentModel } from '../../../core/segmentation/job.js';
import { parseSegmentModel } from '../../../core/segmentation/model.js';
import { prepareMatrix } from '../../../core/segmentation/prepare.js';
import { adjustedRandIndex } from '../../../core/segmentation/stability.js';
import { PERSONA_FEATURES, PERSONAS, personaRows } from './fixtures.js';

const { rows, truth } = personaRows(240, 2026);
const model = trainSegmentModel(
  rows,
  { features: PERSONA_FEATURES, kMin: 2, kMax: 8, silhouetteSampleSize: 800, seed: 7 },
  { version: 'seg-2026-11-26', createdAt: '2026-11-26T02:00:00Z' },
);
const predicted = rows.map((r) => assignCustomer(model, r).index);

test('the pipeline recovers the personas: k = 5 and ARI >= 0.9 against the truth', () => {
  assert.equal(model.k_selection.chosen_k, PERSONAS.length, JSON.stringify(model.k_selection.candidates));
  const ari = adjustedRandIndex(truth, predicted);
  assert.ok(ari >= 0.9, `ARI ${ari}`);
});

test('each persona gets the label a marketer would give it, and labels are unique', () => {
  const labels = model.segments.map((s) => s.label);
  assert.equal(new Set(labels).size, labels.length);
  PERSONAS.forEach((persona, p) => {
    // The segment holding most of this persona's customers.
    const counts = model.segments.map(() => 0);
    predicted.forEach((seg, r) => {
      if (truth[r] === p) counts[seg]! += 1;
    });
    const seg = counts.indexOf(Math.max(...counts));
    assert.equal(model.segments[seg]?.label, persona.name, `persona ${persona.name}: ${JSON.stringify(model.segments[seg])}`);
  });
});

test('the artifact is plain JSON: it survives a round trip and still assigns the same way', () => {
  const copy = parseSegmentModel(JSON.parse(JSON.stringify(model)));
  assert.deepEqual(copy, model);
  assert.deepEqual(
    rows.map((r) => assignCustomer(copy, r).index),
    predicted,
  );
  const shares = model.segments.reduce((a, s) => a + s.share, 0);
  assert.ok(Math.abs(shares - 1) < 1e-9);
  const high = model.segments.find((s) => s.label === 'high-value loyal')!;
  // Centroids are reported in raw units: this group spends about 2,400 a year.
  assert.ok(high.centroid.spend_12m! > 1500 && high.centroid.spend_12m! < 3500, String(high.centroid.spend_12m));
});

test('the sample-then-assign job finds the same segments', () => {
  const matrix = prepareMatrix(model.preparation, rows);
  const job = runSegmentationJob(matrix, rows.length, PERSONA_FEATURES.length, { k: 5, sampleSize: 600, seed: 3 });
  assert.ok(adjustedRandIndex(truth, job.labels) >= 0.9);
  assert.equal(job.sampleSize, 600);
  assert.equal(
    job.sizes.reduce((a, b) => a + b, 0),
    rows.length,
  );
  assert.equal(job.restartInertias.length, JOB_DEFAULTS.nInit);
  // Lloyd passes over all rows after the sample never make things worse.
  const refined = runSegmentationJob(matrix, rows.length, PERSONA_FEATURES.length, { k: 5, sampleSize: 600, seed: 3, refinePasses: 2 });
  assert.ok(refined.inertia <= job.inertia * (1 + 1e-12), `${refined.inertia} > ${job.inertia}`);
});
