/**
 * Incremental feature update for real-time reclassification: stored features plus a few key
 * events give what the next batch run would compute, as far as those events can tell
 * (definitions as in sql/customer_features.sql). A purchase adds to frequency and monetary and
 * sets recency; a profile_update replaces each demographic field it gives (non-null), like the
 * SQL's latest non-NULL value per field; every other feature keeps its stored value until the
 * next batch supersedes it. Recency is in whole UTC days at `asOf`. RFM scores are quintiles over
 * all buyers, which one customer cannot recompute, so the batch's scores are kept as bounds per
 * score (RfmScoreBounds) and a value the batch already scored gets the batch's score.
 * Pure: no I/O, no clock (the caller passes asOf).
 */
import type { ProfileUpdateEvent, PurchaseEvent } from './events.js';
import type { Demographics, Rfm } from './profile.js';
import { MS_PER_UNIT } from './time.js';

export type TriggerEvent = PurchaseEvent | ProfileUpdateEvent;

/** One key event as the listener hands it over. */
export interface TriggerSignal {
  event: TriggerEvent;
  /** When Pub/Sub accepted the message (RFC 3339): latency is reported from here and from the event time. */
  publishTime: string;
}

/** One score's bound: the value a customer must reach (>= for f and m, <= for recency) to get it. */
export interface ScoreBound {
  score: number;
  bound: number;
}

/** Score bounds derived from the batch RFM scores (activities/reclassify.ts reads them from the warehouse). */
export interface RfmScoreBounds {
  /** Where the bounds come from, e.g. `marts.customer_features` or `defaults`; logged with each update. */
  source: string;
  recency_days: readonly ScoreBound[];
  frequency: readonly ScoreBound[];
  monetary: readonly ScoreBound[];
}

/**
 * Used only until the warehouse has scored any buyer (a fresh install): round
 * numbers for a typical web shop, documented so nobody mistakes them for data.
 */
export const DEFAULT_RFM_SCORE_BOUNDS: RfmScoreBounds = {
  source: 'defaults',
  recency_days: [
    { score: 5, bound: 7 },
    { score: 4, bound: 30 },
    { score: 3, bound: 90 },
    { score: 2, bound: 180 },
  ],
  frequency: [
    { score: 2, bound: 2 },
    { score: 3, bound: 3 },
    { score: 4, bound: 5 },
    { score: 5, bound: 10 },
  ],
  monetary: [
    { score: 2, bound: 50 },
    { score: 3, bound: 150 },
    { score: 4, bound: 400 },
    { score: 5, bound: 1000 },
  ],
};

/** The part of a profile the events change, and when its recency was measured. */
export interface FeatureState {
  features: Record<string, number | null>;
  rfm: Rfm;
  demographics: Demographics;
  /** RFC 3339 time at which recency_days holds (the stored profile's source_event_time or updated_at). */
  asOf: string;
}

export const RFM_FEATURES = ['recency_days', 'frequency', 'monetary', 'r_score', 'f_score', 'm_score'] as const;

/** The starting state of a customer nobody has seen: no purchases, no demographics, brand new. */
export function emptyFeatureState(asOf: string): FeatureState {
  return {
    features: { tenure_days: 0 },
    rfm: { recency_days: null, frequency: 0, monetary: 0, r_score: 1, f_score: 1, m_score: 1 },
    demographics: {},
    asOf,
  };
}

/** Whole UTC calendar days from `from` to `to` (DATE_DIFF(DATE(to), DATE(from), DAY)). */
export function utcDayDiff(from: string | Date, to: string | Date): number {
  const day = (t: string | Date) => Math.floor(new Date(t).getTime() / MS_PER_UNIT.d);
  return day(to) - day(from);
}

/** The highest score whose bound `value` reaches; 1 when it reaches none. */
export function scoreFor(value: number, bounds: readonly ScoreBound[], direction: 'higher_is_better' | 'lower_is_better'): number {
  let score = 1;
  for (const b of bounds) {
    const reaches = direction === 'higher_is_better' ? value >= b.bound : value <= b.bound;
    if (reaches && b.score > score) score = b.score;
  }
  return score;
}

/** r/f/m scores of one customer from score bounds; a non-buyer scores 1 on all three. */
export function rfmScores(
  rfm: Pick<Rfm, 'recency_days' | 'frequency' | 'monetary'>,
  bounds: RfmScoreBounds,
): Pick<Rfm, 'r_score' | 'f_score' | 'm_score'> {
  if (rfm.frequency === 0 || rfm.recency_days === null) return { r_score: 1, f_score: 1, m_score: 1 };
  return {
    r_score: scoreFor(rfm.recency_days, bounds.recency_days, 'lower_is_better'),
    f_score: scoreFor(rfm.frequency, bounds.frequency, 'higher_is_better'),
    m_score: scoreFor(rfm.monetary, bounds.monetary, 'higher_is_better'),
  };
}

/** Money sums kept free of binary noise (0.1 + 0.2); micro-units are finer than any currency. */
function roundMoney(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

const DEMOGRAPHIC_FIELDS = ['age', 'gender', 'country', 'city', 'income_band'] as const;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * JSON lets an event carry a lone surrogate (`"\ud800"`), which the lake keeps verbatim, but
 * Firestore refuses a string that has no UTF-8 form and would fail every write of the profile.
 */
export function wellFormed<T>(value: T): T {
  return (typeof value === 'string' ? value.replace(LONE_SURROGATE, '\ufffd') : value) as T;
}

/**
 * Applies events (any order; applied in event-time order) to a state and returns
 * the new state measured at `asOf`. The input state is not modified.
 */
export function applyTriggerEvents(
  base: FeatureState,
  events: readonly TriggerEvent[],
  opts: { asOf: string; bounds: RfmScoreBounds },
): FeatureState {
  const ordered = [...events].sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts) || a.event_id.localeCompare(b.event_id));
  const agedDays = Math.max(utcDayDiff(base.asOf, opts.asOf), 0);
  let recency = base.rfm.recency_days === null ? null : base.rfm.recency_days + agedDays;
  let frequency = base.rfm.frequency;
  let monetary = base.rfm.monetary;
  const demographics: Demographics = { ...base.demographics };

  for (const event of ordered) {
    if (event.type === 'purchase') {
      frequency += 1;
      monetary = roundMoney(monetary + event.properties.amount);
      const days = Math.max(utcDayDiff(event.ts, opts.asOf), 0);
      recency = recency === null ? days : Math.min(recency, days);
    } else {
      for (const field of DEMOGRAPHIC_FIELDS) {
        const value = event.properties[field];
        if (value !== null && value !== undefined) Object.assign(demographics, { [field]: wellFormed(value) });
      }
    }
  }

  const counts = { recency_days: recency, frequency, monetary };
  const rfm: Rfm = { ...counts, ...rfmScores(counts, opts.bounds) };
  const features: Record<string, number | null> = { ...base.features };
  for (const name of RFM_FEATURES) features[name] = rfm[name];
  if (typeof demographics.age === 'number') features.age = demographics.age;
  return { features, rfm, demographics, asOf: opts.asOf };
}
