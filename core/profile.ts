/**
 * Online profile: what Firestore stores at `customer_profiles/{customerId}`, what
 * the profile API serves, and what reclassification writes. The zod schema is the
 * single definition; the type is inferred from it.
 */
import { z } from 'zod';
import { CustomerIdSchema } from './customer-id.js';
import { INCOME_BANDS, Rfc3339Timestamp } from './events.js';
import { IDENTIFIER } from './segmentation/prepare.js';

/** RFM scores are quintiles: 1 (worst) to 5 (best). */
const rfmScore = z.number().int({ error: 'a whole-number score' }).min(1, { error: 'a score >= 1' }).max(5, { error: 'a score <= 5' });

export const RfmSchema = z.object({
  /** Days since the last purchase; null for a customer who never bought. */
  recency_days: z.number().min(0, { error: 'a number of days >= 0' }).nullable(),
  frequency: z.number().int({ error: 'a whole number of orders' }).min(0, { error: 'an order count >= 0' }),
  monetary: z.number().min(0, { error: 'an amount >= 0' }),
  r_score: rfmScore,
  f_score: rfmScore,
  m_score: rfmScore,
});
export type Rfm = z.infer<typeof RfmSchema>;

// Demographics come from profile_update events; every field may be unknown.
export const DemographicsSchema = z.object({
  age: z.number().int().min(0).max(130).nullable().optional(),
  gender: z.string().max(32).nullable().optional(),
  country: z
    .string()
    .regex(/^[A-Z]{2}$/, { error: 'an ISO 3166-1 alpha-2 code, e.g. US' })
    .nullable()
    .optional(),
  city: z.string().max(128).nullable().optional(),
  income_band: z.enum(INCOME_BANDS).nullable().optional(),
});
export type Demographics = z.infer<typeof DemographicsSchema>;

export const ProfileSchema = z.object({
  customer_id: CustomerIdSchema,
  /** Stable segment id from the model (CustomerAssignment.segmentId). */
  segment_id: z.number().int({ error: 'a whole-number segment id' }).min(0, { error: 'a segment id >= 0' }),
  segment_label: z.string().min(1, { error: 'a non-empty segment label' }).max(256),
  /** The parent segment: the level above in the model's segment hierarchy; null or absent for a model without one. */
  parent_segment: z
    .object({
      id: z.number().int({ error: 'a whole-number segment id' }).min(0, { error: 'a segment id >= 0' }),
      label: z.string().min(1, { error: 'a non-empty segment label' }).max(256),
    })
    .nullable()
    .optional(),
  model_version: z.string().min(1, { error: 'a non-empty model version' }).max(128),
  /** Raw feature values by feature name; null where a feature is unknown. */
  features: z.record(z.string().regex(IDENTIFIER, { error: 'a lowercase feature name such as monetary_90d' }), z.number().nullable()),
  rfm: RfmSchema,
  demographics: DemographicsSchema,
  /** When this profile was computed. */
  updated_at: Rfc3339Timestamp,
  /**
   * The newest event time the profile reflects: for a real-time update the
   * latest triggering event, for a batch sync the end of its data interval.
   * Orders writes (see compareProfileRecency).
   */
  source_event_time: Rfc3339Timestamp.optional(),
});
export type Profile = z.infer<typeof ProfileSchema>;

export interface ParentSegmentRef {
  id: number;
  label: string;
}

export interface SegmentRef {
  id: number;
  label: string;
  /** The parent segment; null (or absent, in records written before nested segments) when there is none. */
  parent?: ParentSegmentRef | null;
}

export function segmentOf(profile: Pick<Profile, 'segment_id' | 'segment_label' | 'parent_segment'>): SegmentRef {
  return { id: profile.segment_id, label: profile.segment_label, parent: profile.parent_segment ?? null };
}

/** True when `to` is another segment than `from` (none counts as another): a change of parent is a change too. */
export function segmentChangedFrom(from: SegmentRef | null, to: SegmentRef): boolean {
  if (from === null || from.id !== to.id || from.label !== to.label) return true;
  const a = from.parent ?? null;
  const b = to.parent ?? null;
  return a === null || b === null ? a !== b : a.id !== b.id || a.label !== b.label;
}

/** A human-readable list of what is wrong with a would-be profile. */
export function profileProblems(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.join('.') || '(profile)'}: expected ${i.message}`);
}

type Recency = Pick<Profile, 'updated_at' | 'source_event_time'>;

/**
 * Orders two versions of one customer's profile; > 0 when `a` is newer.
 *
 * The primary key is how far the data reaches (source_event_time, falling back
 * to updated_at): a nightly batch computed at 02:00 from data up to midnight
 * must not replace a real-time profile that already reflects a purchase at
 * 00:59. Ties go to the later computation (a new model over the same data).
 * Equal keys compare as 0, so a retried identical write is a no-op.
 */
export function compareProfileRecency(a: Recency, b: Recency): number {
  const asOf = (p: Recency) => Date.parse(p.source_event_time ?? p.updated_at);
  return Math.sign(asOf(a) - asOf(b)) || Math.sign(Date.parse(a.updated_at) - Date.parse(b.updated_at));
}

/** True when two profiles say the same thing about the customer, whenever they were computed. */
export function sameProfileContent(a: Profile, b: Profile): boolean {
  const { updated_at: _ua, source_event_time: _sa, ...restA } = a;
  const { updated_at: _ub, source_event_time: _sb, ...restB } = b;
  return jsonEqual(restA, restB);
}

/** Structural equality of JSON-like values; an absent key equals an undefined one (Firestore drops undefined). */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ra), ...Object.keys(rb)]);
  for (const k of keys) if (!jsonEqual(ra[k], rb[k])) return false;
  return true;
}

/** Normalise timestamps to UTC `toISOString()` form so stored values sort and compare as written. */
export function normalizeProfile(profile: Profile): Profile {
  const iso = (s: string) => new Date(s).toISOString();
  return {
    ...profile,
    updated_at: iso(profile.updated_at),
    ...(profile.source_event_time === undefined ? {} : { source_event_time: iso(profile.source_event_time) }),
  };
}
