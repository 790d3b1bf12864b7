import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeSegments } from '../../../core/segmentation/labels.js';
import type { Preparation } from '../../../core/segmentation/prepare.js';
import { createRng } from '../../../core/random.js';

const prep: Preparation = {
  training_rows: 1000,
  features: [
    { name: 'recency_days', role: 'recency', weight: 1, log: false, fill: 30, min: 0, max: 365, missing_share: 0 },
    { name: 'orders_12m', role: 'frequency', weight: 1, log: true, fill: 2, min: 0, max: Math.log(51), missing_share: 0 },
    { name: 'spend_12m', role: 'monetary', weight: 2, log: true, fill: 100, min: 0, max: Math.log(10001), missing_share: 0 },
    { name: 'email_clicks', role: 'email', weight: 1, log: false, fill: 1, min: 0, max: 20, missing_share: 0 },
    { name: 'unlabelled_metric', weight: 1, log: false, fill: 0, min: 0, max: 1, missing_share: 0 },
  ],
};

test('rules read roles: loyal spenders, lapsing spenders, email fans, and the quiet rest', () => {
  const centroids = [
    [0.05, 0.9, 1.8, 0.2, 0.5], // recent, frequent, big spend
    [0.8, 0.6, 1.2, 0.1, 0.5], // long gone, used to buy a lot
    [0.3, 0.3, 0.6, 0.9, 0.5], // clicks every email
    [0.3, 0.35, 0.7, 0.3, 0.5], // a little below the average customer on every channel
  ];
  const segments = describeSegments(prep, centroids, [100, 200, 300, 400]);
  assert.deepEqual(
    segments.map((s) => s.label),
    ['high-value loyal', 'at risk', 'email-engaged', 'low engagement'],
  );
  assert.deepEqual(
    segments.map((s) => s.share),
    [0.1, 0.2, 0.3, 0.4],
  );
  // Original units: spend centroid 1.8 of weight 2 is 0.9 of log(10001) -> 10001^0.9 - 1.
  assert.ok(Math.abs(segments[0]!.centroid.spend_12m! - (10001 ** 0.9 - 1)) < 1e-6);
  assert.ok(segments[0]!.traits.includes('spend_12m high'));
  assert.ok(segments[1]!.traits.includes('recency_days high'));
});

test('labels are unique for any centroid layout (random trials, k from 2 to 12)', () => {
  const rng = createRng(5);
  for (let trial = 0; trial < 300; trial++) {
    const k = 2 + (trial % 11);
    const centroids = Array.from({ length: k }, () => prep.features.map((f) => rng.next() * f.weight));
    const sizes = Array.from({ length: k }, () => 1 + Math.floor(rng.next() * 100));
    const labels = describeSegments(prep, centroids, sizes).map((s) => s.label);
    assert.equal(new Set(labels).size, k, `trial ${trial}: ${labels.join(' | ')}`);
  }
});

test('without roles every segment still gets a distinct label', () => {
  const plain: Preparation = {
    training_rows: 10,
    features: [{ name: 'x', weight: 1, log: false, fill: 0, min: 0, max: 1, missing_share: 0 }],
  };
  const labels = describeSegments(plain, [[0.1], [0.5], [0.9]], [3, 3, 4]).map((s) => s.label);
  assert.deepEqual(labels, ['mainstream', 'mainstream 2', 'mainstream 3']);
});
