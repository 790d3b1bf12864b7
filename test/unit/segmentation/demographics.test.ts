import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignCustomer } from '../../../core/segmentation/assign.js';
import { DEFAULT_SEGMENT_FEATURES } from '../../../core/segmentation/features.js';
import { trainSegmentModel } from '../../../core/segmentation/job.js';
import { parseSegmentModel } from '../../../core/segmentation/model.js';
import type { FeatureSpec } from '../../../core/segmentation/prepare.js';
import { assignmentSql } from '../../../core/segmentation/sql.js';
import { adjustedRandIndex } from '../../../core/segmentation/stability.js';
import { PERSONA_FEATURES, PERSONAS, TWIN_DEMOGRAPHICS, twinPersonaRows } from './fixtures.js';

// Six groups: the five personas and the demographic twin of PERSONAS[0] (same behaviour, other age band and country).
const { rows, truth } = twinPersonaRows(200, 2026);
const TWIN = PERSONAS.length;

function fit(features: FeatureSpec[]) {
  const model = trainSegmentModel(
    rows,
    { features, kMin: 2, kMax: 9, silhouetteSampleSize: 800, seed: 7 },
    { version: 'v-demographics', createdAt: '2026-11-26T02:00:00Z' },
  );
  const predicted = Int32Array.from(rows.map((r) => assignCustomer(model, r).index));
  return { model, predicted, ari: adjustedRandIndex(truth, predicted) };
}

/** The share of the twin's rows that sit in the segment holding most of PERSONAS[0]'s rows. */
function twinsWithTheirPersona(predicted: Int32Array): number {
  const counts = new Map<number, number>();
  predicted.forEach((s, r) => {
    if (truth[r] === 0) counts.set(s, (counts.get(s) ?? 0) + 1);
  });
  const home = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
  let twins = 0;
  let together = 0;
  predicted.forEach((s, r) => {
    if (truth[r] !== TWIN) return;
    twins += 1;
    if (s === home) together += 1;
  });
  return together / twins;
}

test('on behaviour alone the twin cannot be told from its persona', () => {
  const { ari, predicted } = fit(PERSONA_FEATURES);
  assert.ok(twinsWithTheirPersona(predicted) > 0.9, `twins with their persona: ${twinsWithTheirPersona(predicted)}`);
  assert.ok(ari < 0.9, `ARI ${ari}`);
});

test('with age and country in the features the twin is its own segment: ARI >= 0.9 against the six groups', () => {
  const { model, ari, predicted } = fit([...PERSONA_FEATURES, ...TWIN_DEMOGRAPHICS]);
  assert.ok(ari >= 0.9, `ARI ${ari}, k ${model.k_selection.chosen_k}`);
  assert.ok(twinsWithTheirPersona(predicted) < 0.1, `twins with their persona: ${twinsWithTheirPersona(predicted)}`);
  // The country one-hot dimensions report shares: the twin's segment is (almost) all DEMOGRAPHIC_TWIN's country, ES.
  const twinSegment = model.segments[predicted[rows.findIndex((_, r) => truth[r] === TWIN)]!]!;
  assert.ok(twinSegment.centroid['country=ES']! > 0.9, JSON.stringify(twinSegment.centroid));
  assert.deepEqual(parseSegmentModel(JSON.parse(JSON.stringify(model))), model);
});

test('the imputation rule of every dimension is recorded in the model', () => {
  const { model } = fit([...PERSONA_FEATURES, ...TWIN_DEMOGRAPHICS]);
  const byName = new Map(model.preparation.features.map((f) => [f.name, f]));
  assert.equal(byName.get('age')?.impute, 'median');
  assert.equal(byName.get('country=US')?.impute, 'mode');
  assert.equal(byName.get('country=US')?.fill_category, 'US');
  assert.ok(byName.get('country=US')!.missing_share > 0);
});

test('the default features weigh behaviour ahead of demographics', () => {
  const weight = (f: FeatureSpec) => f.weight * f.weight;
  const demographic = new Set(['age', 'gender', 'country', 'income_band']);
  const behaviour = DEFAULT_SEGMENT_FEATURES.filter((f) => !demographic.has(f.name));
  const demo = DEFAULT_SEGMENT_FEATURES.filter((f) => demographic.has(f.name));
  assert.equal(demo.length, 4);
  assert.ok(Math.max(...demo.map((f) => f.weight)) < Math.min(...behaviour.map((f) => f.weight)));
  assert.ok(demo.reduce((s, f) => s + weight(f), 0) < 0.1 * behaviour.reduce((s, f) => s + weight(f), 0));
});

test('a categorical feature training never saw a value of gives a valid model whose dimensions scale to 0', () => {
  const bare = rows.map((r) => ({ ...r, country: null }));
  const model = trainSegmentModel(
    bare,
    { features: [...PERSONA_FEATURES, ...TWIN_DEMOGRAPHICS], kMin: 5, kMax: 5, silhouetteSampleSize: 300, seed: 7 },
    { version: 'v-bare', createdAt: '2026-11-26T02:00:00Z' },
  );
  const country = model.preparation.features.filter((f) => f.column === 'country');
  assert.deepEqual(
    country.map((f) => f.name),
    ['country=(other)'],
  );
  assert.equal(country[0]!.missing_share, 1);
  assert.deepEqual(parseSegmentModel(JSON.parse(JSON.stringify(model))), model);
  assert.equal(assignCustomer(model, { ...bare[0]!, country: 'DE' }).vector.at(-1), 0);
  assert.match(assignmentSql(model).sql, /CAST\(`country` AS STRING\)/);
});
