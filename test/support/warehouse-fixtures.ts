/**
 * Hand-built lake data for the ELT integration test: four customers over two arrival hours,
 * with the features each should end up with, worked out by hand from the definitions in
 * sql/customer_features.sql (the arithmetic is spelled out next to every number).
 *
 * Arrival hours: H1 = 2026-03-10 08:00-09:00, H2 = 09:00-10:00 (UTC); as_of_date is 2026-03-10
 * for both. H2 holds a redelivery of an H1 event (same event_id, later received_at), a
 * duplicate inside the hour (two objects), and a late event: carol's purchase with an event
 * time 60 days before its arrival.
 */
import type { Storage } from '@google-cloud/storage';
import type { EventType } from '../../core/events.js';
import { encodeNdjsonGz, rawObjectName, type LakeRecord } from '../../core/lake.js';
import type { DataInterval } from '../../core/dag-task.js';

export const H1: DataInterval = { start: '2026-03-10T08:00:00Z', end: '2026-03-10T09:00:00Z' };
export const H2: DataInterval = { start: '2026-03-10T09:00:00Z', end: '2026-03-10T10:00:00Z' };

type Extra = Record<string, unknown>;

let seq = 0;
function record(
  id: string,
  customer: string,
  type: EventType,
  ts: string,
  properties: Record<string, unknown>,
  receivedAt: string,
  message = `m-${++seq}`,
): LakeRecord {
  return {
    event_id: eventId(id),
    customer_id: customer,
    type,
    ts,
    properties: JSON.stringify(properties),
    extra: null,
    message_id: message,
    publish_time: new Date(Date.parse(receivedAt) - 1_000).toISOString(),
    received_at: receivedAt,
  };
}

/** Deterministic UUIDs: `A1` -> 00000000-0000-4000-8000-0000000000a1. */
export function eventId(id: string): string {
  return `00000000-0000-4000-8000-${id.toLowerCase().padStart(12, '0')}`;
}

const url = (path: string) => `https://shop.example${path}`;

const B1 = record(
  'B1',
  'bob',
  'purchase',
  '2026-03-08T10:00:00.000Z',
  { order_id: 'o-b1', amount: 40, currency: 'USD' },
  '2026-03-10T08:10:00.000Z',
  'm-b1-first',
);
const B5 = record('B5', 'bob', 'email_open', '2026-03-10T09:20:00.000Z', { campaign_id: 'c2' }, '2026-03-10T09:21:00.000Z', 'm-b5-first');

/** Lake objects per arrival hour; each inner array is one object. */
export const LAKE_OBJECTS: ReadonlyArray<{ hour: DataInterval; records: ReadonlyArray<LakeRecord | (LakeRecord & Extra)> }> = [
  {
    hour: H1,
    records: [
      record(
        'A1',
        'alice',
        'profile_update',
        '2026-02-28T12:00:00.000Z',
        { age: 34, gender: 'female', country: 'US', city: 'Boston', income_band: 'middle' },
        '2026-03-10T08:05:00.000Z',
      ),
      record(
        'A2',
        'alice',
        'purchase',
        '2026-02-18T12:00:00.000Z',
        { order_id: 'o-a1', amount: 120, currency: 'USD' },
        '2026-03-10T08:05:00.000Z',
      ),
      record('A3', 'alice', 'email_open', '2026-03-05T08:00:00.000Z', { campaign_id: 'c1' }, '2026-03-10T08:06:00.000Z'),
      record('A4', 'alice', 'email_click', '2026-03-05T08:01:00.000Z', { campaign_id: 'c1', url: url('/c1') }, '2026-03-10T08:06:00.000Z'),
      B1,
      record('B2', 'bob', 'app_session', '2026-03-08T10:05:00.000Z', { duration_ms: 60_000, platform: 'ios' }, '2026-03-10T08:10:00.000Z'),
      record('B3', 'bob', 'page_view', '2026-03-08T10:00:00.000Z', { url: url('/'), duration_ms: 5_000 }, '2026-03-10T08:10:00.000Z'),
      record(
        'B6',
        'bob',
        'add_to_cart',
        '2026-03-08T09:58:00.000Z',
        { product_id: 'sku-1', price: 40, quantity: 1 },
        '2026-03-10T08:10:00.000Z',
      ),
    ],
  },
  {
    hour: H1,
    records: [
      record(
        'C1',
        'carol',
        'profile_update',
        '2026-03-10T08:10:00.000Z',
        { age: 51, gender: 'male', country: 'DE', income_band: 'high' },
        '2026-03-10T08:20:00.000Z',
      ),
      record('C2', 'carol', 'email_open', '2026-03-06T09:00:00.000Z', { campaign_id: 'c1' }, '2026-03-10T08:20:00.000Z'),
      record(
        'D1',
        'dave',
        'purchase',
        '2026-02-08T12:00:00.000Z',
        { order_id: 'o-d1', amount: 500, currency: 'USD' },
        '2026-03-10T08:30:00.000Z',
      ),
      record(
        'D2',
        'dave',
        'purchase',
        '2026-02-08T12:30:00.000Z',
        { order_id: 'o-d2', amount: 20, currency: 'USD' },
        '2026-03-10T08:30:00.000Z',
      ),
      record(
        'D3',
        'dave',
        'app_session',
        '2026-02-08T12:00:00.000Z',
        { duration_ms: 120_000, platform: 'android' },
        '2026-03-10T08:30:00.000Z',
      ),
    ],
  },
  {
    hour: H2,
    records: [
      // A partial profile update: only the country changes.
      record('A6', 'alice', 'profile_update', '2026-03-10T09:05:00.000Z', { country: 'CA' }, '2026-03-10T09:06:00.000Z'),
      record(
        'A7',
        'alice',
        'purchase',
        '2026-03-10T09:10:00.000Z',
        { order_id: 'o-a2', amount: 30.5, currency: 'USD' },
        '2026-03-10T09:11:00.000Z',
      ),
      record('A8', 'alice', 'page_view', '2026-03-10T09:00:00.000Z', { url: url('/a'), duration_ms: 1_000 }, '2026-03-10T09:01:00.000Z'),
      record('A9', 'alice', 'page_view', '2026-03-10T09:10:00.000Z', { url: url('/b'), duration_ms: 3_000 }, '2026-03-10T09:11:00.000Z'),
      record('A10', 'alice', 'click', '2026-03-10T09:20:00.000Z', { url: url('/b#buy') }, '2026-03-10T09:21:00.000Z'),
      // Exactly 30 minutes after the click: a gap of 30 minutes starts a new session.
      record('A11', 'alice', 'page_view', '2026-03-10T09:50:00.000Z', { url: url('/c'), duration_ms: 2_000 }, '2026-03-10T09:51:00.000Z'),
      record('A12', 'alice', 'email_open', '2026-03-10T09:30:00.000Z', { campaign_id: 'c2' }, '2026-03-10T09:31:00.000Z'),
      // Redelivery of an H1 event: same event_id, later received_at.
      { ...B1, message_id: 'm-b1-second', publish_time: '2026-03-10T09:14:59.000Z', received_at: '2026-03-10T09:15:00.000Z' },
      B5,
    ],
  },
  {
    hour: H2,
    records: [
      // The late event: event time 60 days before arrival. A field this loader does not know
      // (a newer lake writer) is ignored by the load.
      {
        ...record(
          'C3',
          'carol',
          'purchase',
          '2026-01-09T09:30:00.000Z',
          { order_id: 'o-c1', amount: 75, currency: 'USD' },
          '2026-03-10T09:30:00.000Z',
        ),
        lake_note: 'from a newer writer',
      },
      // The same email open delivered twice within H2 (two objects); this copy has no `extra` field.
      withoutExtra({ ...B5, message_id: 'm-b5-second', publish_time: '2026-03-10T09:39:59.000Z', received_at: '2026-03-10T09:40:00.000Z' }),
    ],
  },
];

function withoutExtra(r: LakeRecord): LakeRecord {
  const copy: Partial<LakeRecord> = { ...r };
  delete copy.extra;
  return copy as LakeRecord;
}

export const RAW_ROWS_AFTER_H1 = 13;
export const RAW_ROWS_AFTER_H2 = 24; // + 7 alice, 1 bob redelivery, 2 copies of B5, 1 carol
export const STAGED_EVENTS_AFTER_H2 = 22; // 13 + 7 alice + B5 + C3 (the B1 redelivery replaces its row)

/** Writes the objects as the ingestion does: gzip NDJSON, Content-Encoding gzip, name from the message ids. */
export async function writeLakeFixtures(storage: Storage, bucket: string): Promise<string[]> {
  const names: string[] = [];
  for (const object of LAKE_OBJECTS) {
    const name = rawObjectName(
      new Date(object.hour.start),
      object.records.map((r) => r.message_id),
    );
    await storage
      .bucket(bucket)
      .file(name)
      .save(encodeNdjsonGz(object.records), {
        resumable: false,
        contentType: 'application/x-ndjson',
        metadata: { contentEncoding: 'gzip' },
        gzip: false,
      });
    names.push(name);
  }
  return names;
}

export type FeatureRow = Record<string, string | number | null>;

const none = { web_sessions: 0, sessions_per_week: 0, pages_per_session: null, avg_time_on_page_ms: null };

/**
 * After H1 (features_as_of 09:00). Buyers: alice (recency 20 = 03-10 minus 02-18, 1 order,
 * 120), bob (2, 1, 40), dave (30, 2, 520); n = 3, score = ceil(5k/3):
 *   R (k = buyers with recency >= own): dave k1 -> 2, alice k2 -> 4, bob k3 -> 5
 *   F (k = buyers with frequency <= own): alice, bob k2 -> 4; dave k3 -> 5
 *   M: bob k1 -> 2, alice k2 -> 4, dave k3 -> 5
 * Campaign c1 launched 03-05 08:00 (alice's open).
 */
export const FEATURES_AFTER_H1: Record<string, FeatureRow> = {
  alice: {
    age: 34,
    gender: 'female',
    country: 'US',
    income_band: 'middle',
    first_seen_at: '2026-02-18T12:00:00.000Z',
    tenure_days: 20,
    days_active: 3, // 02-18, 02-28, 03-05
    engagement_frequency: 3 / 21,
    ...none,
    cart_adds: 0,
    recency_days: 20,
    frequency: 1,
    monetary: 120,
    r_score: 4,
    f_score: 4,
    m_score: 4,
    campaigns_opened: 1,
    campaigns_clicked: 1,
    campaigns_received: 1,
    email_open_rate: 1,
    email_ctr: 1,
    app_sessions: 0,
    features_as_of: H1.end,
    updated_at: H1.end,
  },
  bob: {
    age: null,
    gender: null,
    country: null,
    income_band: null,
    first_seen_at: '2026-03-08T09:58:00.000Z',
    tenure_days: 2,
    days_active: 1,
    engagement_frequency: 1 / 3,
    web_sessions: 1,
    sessions_per_week: (1 * 7) / 7,
    pages_per_session: 1,
    avg_time_on_page_ms: 5000,
    cart_adds: 1,
    recency_days: 2,
    frequency: 1,
    monetary: 40,
    r_score: 5,
    f_score: 4,
    m_score: 2,
    // c1 launched before bob was first seen and he never interacted: nothing received.
    campaigns_opened: 0,
    campaigns_clicked: 0,
    campaigns_received: 0,
    email_open_rate: null,
    email_ctr: null,
    app_sessions: 1,
    features_as_of: H1.end,
    updated_at: H1.end,
  },
  carol: {
    age: 51,
    gender: 'male',
    country: 'DE',
    income_band: 'high',
    first_seen_at: '2026-03-06T09:00:00.000Z',
    tenure_days: 4,
    days_active: 2,
    engagement_frequency: 2 / 5,
    ...none,
    cart_adds: 0,
    // Not a buyer (yet): no recency, worst scores.
    recency_days: null,
    frequency: 0,
    monetary: 0,
    r_score: 1,
    f_score: 1,
    m_score: 1,
    campaigns_opened: 1,
    campaigns_clicked: 0,
    campaigns_received: 1,
    email_open_rate: 1,
    email_ctr: 0,
    app_sessions: 0,
    features_as_of: H1.end,
    updated_at: H1.end,
  },
  dave: {
    age: null,
    gender: null,
    country: null,
    income_band: null,
    first_seen_at: '2026-02-08T12:00:00.000Z',
    tenure_days: 30,
    days_active: 1,
    engagement_frequency: 1 / 31,
    ...none,
    cart_adds: 0,
    recency_days: 30,
    frequency: 2,
    monetary: 520,
    r_score: 2,
    f_score: 5,
    m_score: 5,
    // c1 launched after dave was first seen, and he did not open it.
    campaigns_opened: 0,
    campaigns_clicked: 0,
    campaigns_received: 1,
    email_open_rate: 0,
    email_ctr: null,
    app_sessions: 1,
    features_as_of: H1.end,
    updated_at: H1.end,
  },
};

/**
 * After H2 (features_as_of 10:00). Touched: alice, bob (redelivery and B5), carol (late
 * purchase). dave was not touched: his row is the H1 row, unchanged.
 * Buyers: alice (recency 0, 2 orders, 150.5), bob (2, 1, 40), carol (60 = 03-10 minus 01-09,
 * 1, 75), dave (30, 2, 520); n = 4, score = ceil(5k/4):
 *   R: carol k1 -> 2, dave k2 -> 3, bob k3 -> 4, alice k4 -> 5
 *   F: bob, carol k2 -> 3; alice, dave k4 -> 5
 *   M: bob k1 -> 2, carol k2 -> 3, alice k3 -> 4, dave k4 -> 5
 * Campaign c2 launched 03-10 09:20 (bob's open, before alice's at 09:30).
 */
export const FEATURES_AFTER_H2: Record<string, FeatureRow> = {
  alice: {
    age: 34,
    gender: 'female',
    country: 'CA',
    income_band: 'middle', // country from the partial update
    first_seen_at: '2026-02-18T12:00:00.000Z',
    tenure_days: 20,
    days_active: 4,
    engagement_frequency: 4 / 21,
    // Sessions [09:00 pv 1000, 09:10 pv 3000, 09:20 click] and [09:50 pv 2000].
    web_sessions: 2,
    sessions_per_week: (2 * 7) / 21,
    pages_per_session: 3 / 2,
    avg_time_on_page_ms: 6000 / 3,
    cart_adds: 0,
    recency_days: 0,
    frequency: 2,
    monetary: 150.5,
    r_score: 5,
    f_score: 5,
    m_score: 4,
    campaigns_opened: 2,
    campaigns_clicked: 1,
    campaigns_received: 2,
    email_open_rate: 1,
    email_ctr: 1 / 2,
    app_sessions: 0,
    features_as_of: H2.end,
    updated_at: H2.end,
  },
  bob: {
    age: null,
    gender: null,
    country: null,
    income_band: null,
    first_seen_at: '2026-03-08T09:58:00.000Z',
    tenure_days: 2,
    days_active: 2,
    engagement_frequency: 2 / 3,
    web_sessions: 1,
    sessions_per_week: 1,
    pages_per_session: 1,
    avg_time_on_page_ms: 5000,
    cart_adds: 1,
    // The redelivered purchase counts once.
    recency_days: 2,
    frequency: 1,
    monetary: 40,
    r_score: 4,
    f_score: 3,
    m_score: 2,
    campaigns_opened: 1,
    campaigns_clicked: 0,
    campaigns_received: 1,
    email_open_rate: 1,
    email_ctr: 0,
    app_sessions: 1,
    features_as_of: H2.end,
    updated_at: H2.end,
  },
  carol: {
    age: 51,
    gender: 'male',
    country: 'DE',
    income_band: 'high',
    // The late purchase moves first_seen back 60 days and makes carol a buyer.
    first_seen_at: '2026-01-09T09:30:00.000Z',
    tenure_days: 60,
    days_active: 3,
    engagement_frequency: 3 / 61,
    ...none,
    cart_adds: 0,
    recency_days: 60,
    frequency: 1,
    monetary: 75,
    r_score: 2,
    f_score: 3,
    m_score: 3,
    // c1 (own) and c2 (launched after 01-09) received; only c1 opened.
    campaigns_opened: 1,
    campaigns_clicked: 0,
    campaigns_received: 2,
    email_open_rate: 1 / 2,
    email_ctr: 0,
    app_sessions: 0,
    features_as_of: H2.end,
    updated_at: H2.end,
  },
  dave: FEATURES_AFTER_H1.dave as FeatureRow,
};

/** alice's sessions after H2, by hand (session_id = customer/UNIX_MICROS(start)). */
export const ALICE_SESSIONS_AFTER_H2: FeatureRow[] = [
  {
    session_id: `alice/${Date.parse('2026-03-10T09:00:00Z') * 1000}`,
    session_start: '2026-03-10T09:00:00.000Z',
    session_end: '2026-03-10T09:20:00.000Z',
    events: 3,
    page_views: 2,
    clicks: 1,
    total_page_duration_ms: 4000,
    avg_time_on_page_ms: 2000,
  },
  {
    session_id: `alice/${Date.parse('2026-03-10T09:50:00Z') * 1000}`,
    session_start: '2026-03-10T09:50:00.000Z',
    session_end: '2026-03-10T09:50:00.000Z',
    events: 1,
    page_views: 1,
    clicks: 0,
    total_page_duration_ms: 2000,
    avg_time_on_page_ms: 2000,
  },
];
