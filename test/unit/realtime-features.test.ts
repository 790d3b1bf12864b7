import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProfileUpdateEvent, PurchaseEvent } from '../../core/events.js';
import {
  applyTriggerEvents,
  DEFAULT_RFM_SCORE_BOUNDS,
  emptyFeatureState,
  rfmScores,
  scoreFor,
  utcDayDiff,
  type FeatureState,
  type RfmScoreBounds,
} from '../../core/realtime-features.js';

let n = 0;
const uuid = () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`;

function purchase(ts: string, amount: number, customer = 'c-1'): PurchaseEvent {
  return { event_id: uuid(), customer_id: customer, type: 'purchase', ts, properties: { order_id: `o-${n}`, amount, currency: 'USD' } };
}

function profileUpdate(ts: string, properties: ProfileUpdateEvent['properties']): ProfileUpdateEvent {
  return { event_id: uuid(), customer_id: 'c-1', type: 'profile_update', ts, properties };
}

// Bounds as the batch produced them: frequency 1 -> 1, 2 -> 3, 4 -> 4, 8 -> 5; recency <= 3 days -> 5, ...
const BOUNDS: RfmScoreBounds = {
  source: 'test',
  recency_days: [
    { score: 5, bound: 3 },
    { score: 4, bound: 10 },
    { score: 3, bound: 40 },
    { score: 2, bound: 100 },
    { score: 1, bound: 400 },
  ],
  frequency: [
    { score: 1, bound: 1 },
    { score: 3, bound: 2 },
    { score: 4, bound: 4 },
    { score: 5, bound: 8 },
  ],
  monetary: [
    { score: 1, bound: 5 },
    { score: 2, bound: 60 },
    { score: 3, bound: 120 },
    { score: 4, bound: 300 },
    { score: 5, bound: 900 },
  ],
};

const stored: FeatureState = {
  features: { recency_days: 20, frequency: 3, monetary: 100, r_score: 3, f_score: 3, m_score: 2, sessions_per_week: 1.5, tenure_days: 200 },
  rfm: { recency_days: 20, frequency: 3, monetary: 100, r_score: 3, f_score: 3, m_score: 2 },
  demographics: { age: 30, country: 'DE', income_band: 'middle' },
  asOf: '2026-11-20T00:00:00Z',
};

describe('scores from batch bounds', () => {
  it('gives a value the batch scored the batch score, and others the highest bound they reach', () => {
    assert.equal(scoreFor(2, BOUNDS.frequency, 'higher_is_better'), 3);
    assert.equal(scoreFor(3, BOUNDS.frequency, 'higher_is_better'), 3);
    assert.equal(scoreFor(8, BOUNDS.frequency, 'higher_is_better'), 5);
    assert.equal(scoreFor(80, BOUNDS.frequency, 'higher_is_better'), 5);
    assert.equal(scoreFor(0.5, BOUNDS.monetary, 'higher_is_better'), 1);
    assert.equal(scoreFor(0, BOUNDS.recency_days, 'lower_is_better'), 5);
    assert.equal(scoreFor(11, BOUNDS.recency_days, 'lower_is_better'), 3);
    assert.equal(scoreFor(5000, BOUNDS.recency_days, 'lower_is_better'), 1);
  });

  it('scores a non-buyer 1 on all three, as the SQL does', () => {
    assert.deepEqual(rfmScores({ recency_days: null, frequency: 0, monetary: 0 }, BOUNDS), { r_score: 1, f_score: 1, m_score: 1 });
  });
});

describe('applyTriggerEvents', () => {
  it('a purchase updates frequency, monetary, recency and their scores; other features stay', () => {
    const next = applyTriggerEvents(stored, [purchase('2026-11-26T09:00:00Z', 250)], { asOf: '2026-11-26T09:00:01Z', bounds: BOUNDS });
    assert.deepEqual(next.rfm, { recency_days: 0, frequency: 4, monetary: 350, r_score: 5, f_score: 4, m_score: 4 });
    assert.equal(next.features.frequency, 4);
    assert.equal(next.features.monetary, 350);
    assert.equal(next.features.recency_days, 0);
    assert.equal(next.features.m_score, 4);
    assert.equal(next.features.sessions_per_week, 1.5);
    assert.equal(next.features.tenure_days, 200);
    assert.deepEqual(next.demographics, stored.demographics);
    assert.equal(next.asOf, '2026-11-26T09:00:01Z');
    // The input is untouched.
    assert.equal(stored.rfm.frequency, 3);
  });

  it('ages a stored recency to the new as-of date when no purchase is more recent', () => {
    const next = applyTriggerEvents(stored, [profileUpdate('2026-11-26T09:00:00Z', { city: 'Berlin' })], {
      asOf: '2026-11-26T09:00:00Z',
      bounds: BOUNDS,
    });
    assert.equal(next.rfm.recency_days, 26);
    assert.equal(next.rfm.r_score, 3);
    assert.equal(next.rfm.frequency, 3);
  });

  it('a late purchase counts but does not make recency newer than a stored later one', () => {
    const fresh: FeatureState = { ...stored, rfm: { ...stored.rfm, recency_days: 0 }, asOf: '2026-11-26T00:00:00Z' };
    const next = applyTriggerEvents(fresh, [purchase('2026-11-10T12:00:00Z', 10)], { asOf: '2026-11-26T10:00:00Z', bounds: BOUNDS });
    assert.equal(next.rfm.recency_days, 0);
    assert.equal(next.rfm.frequency, 4);
  });

  it('a burst is applied in event-time order whatever order it arrived in', () => {
    const events = [purchase('2026-11-26T09:00:02Z', 0.2), purchase('2026-11-26T09:00:01Z', 0.1)];
    const next = applyTriggerEvents(emptyFeatureState('2026-11-26T09:00:00Z'), events, { asOf: '2026-11-26T09:00:03Z', bounds: BOUNDS });
    assert.equal(next.rfm.frequency, 2);
    assert.equal(next.rfm.monetary, 0.3); // no 0.30000000000000004
  });

  it('a profile update replaces the fields it gives and keeps the others', () => {
    const events = [
      profileUpdate('2026-11-26T09:00:00Z', { age: 41, country: 'FR', gender: null }),
      profileUpdate('2026-11-26T09:00:05Z', { income_band: 'high' }),
    ];
    const next = applyTriggerEvents(stored, events, { asOf: '2026-11-26T09:00:06Z', bounds: BOUNDS });
    assert.deepEqual(next.demographics, { age: 41, country: 'FR', income_band: 'high' });
    assert.equal(next.features.age, 41);
    assert.equal(next.rfm.frequency, 3);
  });

  it('a customer nobody knew gets features from the event alone', () => {
    const asOf = '2026-11-26T09:00:01Z';
    const next = applyTriggerEvents(emptyFeatureState(asOf), [purchase('2026-11-26T09:00:00Z', 42)], {
      asOf,
      bounds: DEFAULT_RFM_SCORE_BOUNDS,
    });
    assert.deepEqual(next.rfm, { recency_days: 0, frequency: 1, monetary: 42, r_score: 5, f_score: 1, m_score: 1 });
    assert.equal(next.features.tenure_days, 0);
  });

  it('counts whole UTC days like DATE_DIFF', () => {
    assert.equal(utcDayDiff('2026-11-25T23:59:59Z', '2026-11-26T00:00:00Z'), 1);
    assert.equal(utcDayDiff('2026-11-26T00:00:00Z', '2026-11-26T23:59:59Z'), 0);
    assert.equal(utcDayDiff('2026-11-26T01:00:00+02:00', '2026-11-26T00:30:00Z'), 1);
  });
});
