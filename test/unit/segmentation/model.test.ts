import assert from 'node:assert/strict';
import { test } from 'node:test';
import { trainSegmentModel } from '../../../core/segmentation/job.js';
import { parseSegmentModel } from '../../../core/segmentation/model.js';
import { PERSONA_FEATURES, personaRows } from './fixtures.js';

const { rows } = personaRows(60, 12);
const model = trainSegmentModel(
  rows,
  { features: PERSONA_FEATURES, kMin: 3, kMax: 6, silhouetteSampleSize: 200, seed: 2 },
  { version: 'seg-2026-11-26.1', createdAt: new Date('2026-11-26T02:00:00Z') },
);

test('a trained artifact records how it was made', () => {
  assert.equal(model.created_at, '2026-11-26T02:00:00.000Z');
  assert.equal(model.training.sample_size, 300);
  assert.equal(model.training.seed, 2);
  assert.deepEqual(
    model.k_selection.candidates.map((c) => c.k),
    [3, 4, 5, 6],
  );
  assert.equal(model.centroids.length, model.k_selection.chosen_k);
  assert.equal(model.metrics.silhouette, model.k_selection.candidates.find((c) => c.k === model.k_selection.chosen_k)?.silhouette);
});

test('an inconsistent artifact is refused with every problem named', () => {
  const broken = JSON.parse(JSON.stringify(model)) as Record<string, unknown> & typeof model;
  broken.centroids[0] = broken.centroids[0]!.slice(1);
  broken.segments[1]!.label = broken.segments[0]!.label;
  broken.version = 'has spaces';
  assert.throws(
    () => parseSegmentModel(broken),
    (err: unknown) =>
      err instanceof Error &&
      /3 problems/.test(err.message) &&
      /version: expected a model version/.test(err.message) &&
      /centroids\.0: expected 8 values, got 7/.test(err.message) &&
      /labels must be unique/.test(err.message),
  );
});
