import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyPreparation, fitPreparation, PreparationSchema, prepareMatrix, toOriginalUnits } from '../../../core/segmentation/prepare.js';
import type { FeatureSpec } from '../../../core/segmentation/prepare.js';

const spec: FeatureSpec[] = [
  { name: 'recency_days', weight: 2 },
  { name: 'spend_12m', weight: 1, log: true },
  { name: 'country_code', weight: 1 },
];

const rows = [
  { recency_days: 10, spend_12m: 0, country_code: 7 },
  { recency_days: 30, spend_12m: 99, country_code: 7 },
  { recency_days: null, spend_12m: 999, country_code: 7 },
  { recency_days: 50, spend_12m: null, country_code: 7 },
  { recency_days: 20, spend_12m: 9, country_code: 7 },
];

test('fit records median fills, log-space min/max and missing shares', () => {
  const prep = fitPreparation(rows, spec);
  const [recency, spend, country] = prep.features;
  // Observed recency 10, 30, 50, 20 -> median of an even count is the mean of the middle two.
  assert.equal(recency?.fill, 25);
  assert.equal(recency?.min, 10);
  assert.equal(recency?.max, 50);
  assert.equal(recency?.missing_share, 0.2);
  // Observed spend 0, 99, 999, 9 -> median (9 + 99) / 2 = 54, imputed in raw units, then logged.
  assert.equal(spend?.fill, 54);
  assert.equal(spend?.min, 0);
  assert.equal(spend?.max, Math.log(1000));
  assert.equal(country?.min, 7);
  assert.equal(country?.max, 7);
  assert.equal(prep.training_rows, 5);
});

test('apply: impute, log, scale, weight; a constant feature scales to 0', () => {
  const prep = fitPreparation(rows, spec);
  const v = applyPreparation(prep, { recency_days: 30, spend_12m: 99, country_code: 7 });
  assert.equal(v[0], ((30 - 10) / 40) * 2);
  assert.equal(v[1], Math.log(100) / Math.log(1000));
  assert.equal(v[2], 0);
  // Missing and non-finite values take the median; absent keys too.
  const missing = applyPreparation(prep, { recency_days: null, spend_12m: Number.NaN });
  assert.equal(missing[0], ((25 - 10) / 40) * 2);
  assert.equal(missing[1], Math.log(55) / Math.log(1000));
  assert.deepEqual(applyPreparation(prep, { recency_days: Infinity }).slice(0, 1), missing.slice(0, 1));
});

test('apply clips values outside the training range to [0, weight]', () => {
  const prep = fitPreparation(rows, spec);
  const high = applyPreparation(prep, { recency_days: 5000, spend_12m: 1e9, country_code: 8 });
  assert.deepEqual(high, [2, 1, 0]);
  // Negative money (refunds) clamps to 0 before the log rather than producing NaN.
  const low = applyPreparation(prep, { recency_days: -3, spend_12m: -50, country_code: 6 });
  assert.deepEqual(low, [0, 0, 0]);
});

test('round trip: prepared values map back to the raw units they came from', () => {
  const prep = fitPreparation(rows, spec);
  for (const row of [
    { recency_days: 10, spend_12m: 0, country_code: 7 },
    { recency_days: 37.5, spend_12m: 123.45, country_code: 7 },
    { recency_days: 50, spend_12m: 999, country_code: 7 },
  ]) {
    const back = toOriginalUnits(prep, applyPreparation(prep, row));
    assert.ok(Math.abs(back[0]! - row.recency_days) < 1e-9, `recency ${back[0]} vs ${row.recency_days}`);
    assert.ok(Math.abs(back[1]! - row.spend_12m) < 1e-9 * (1 + row.spend_12m), `spend ${back[1]} vs ${row.spend_12m}`);
    assert.equal(back[2], 7);
  }
});

test('the preparation is plain JSON and the matrix form matches the row form', () => {
  const prep = fitPreparation(rows, spec);
  const copy = PreparationSchema.parse(JSON.parse(JSON.stringify(prep)));
  assert.deepEqual(copy, prep);
  const matrix = prepareMatrix(copy, rows);
  assert.deepEqual(Array.from(matrix.subarray(3, 6)), applyPreparation(prep, rows[1]!));
});

test('bad specs are refused with the reason', () => {
  assert.throws(() => fitPreparation(rows, [{ name: 'Spend; DROP', weight: 1 }]), /lowercase identifier/);
  assert.throws(() => fitPreparation(rows, [spec[0]!, spec[0]!]), /listed twice/);
  assert.throws(() => fitPreparation(rows, [{ name: 'spend_12m', weight: 0 }]), /weight > 0/);
  assert.throws(() => fitPreparation([], spec), /at least one training row/);
});
