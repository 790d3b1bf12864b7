/**
 * Segmentation fixtures: customers from the demo personas (core/personas.ts), their
 * marts.customer_features rows computed in TypeScript from their generated events (the same
 * definitions as sql/customer_features.sql, for the columns segmentation reads), and loading
 * such rows straight into a test dataset.
 */
import type { BigQuery, TableField } from '@google-cloud/bigquery';
import type { Storage } from '@google-cloud/storage';
import {
  DEMOGRAPHIC_TWIN,
  PERSONAS,
  PERSONA_BEHAVIOUR,
  drawDemographics,
  generateEvents,
  makePopulation,
  type Persona,
} from '../../demo/personas.js';
import { createRng, deriveSeed } from '../../core/random.js';
import type { Event } from '../../core/events.js';

/** The customer_features columns segmentation reads (names and types as in sql/customer_features.sql). */
export const FEATURE_COLUMNS: readonly TableField[] = [
  { name: 'customer_id', type: 'STRING', mode: 'REQUIRED' },
  { name: 'tenure_days', type: 'INT64' },
  { name: 'days_active', type: 'INT64' },
  { name: 'engagement_frequency', type: 'FLOAT64' },
  { name: 'web_sessions', type: 'INT64' },
  { name: 'sessions_per_week', type: 'FLOAT64' },
  { name: 'pages_per_session', type: 'FLOAT64' },
  { name: 'avg_time_on_page_ms', type: 'FLOAT64' },
  { name: 'cart_adds', type: 'INT64' },
  { name: 'recency_days', type: 'INT64' },
  { name: 'frequency', type: 'INT64' },
  { name: 'monetary', type: 'FLOAT64' },
  { name: 'email_open_rate', type: 'FLOAT64' },
  { name: 'email_ctr', type: 'FLOAT64' },
  { name: 'app_sessions', type: 'INT64' },
  { name: 'age', type: 'INT64' },
  { name: 'gender', type: 'STRING' },
  { name: 'country', type: 'STRING' },
  { name: 'income_band', type: 'STRING' },
  { name: 'updated_at', type: 'TIMESTAMP' },
];

export type FeatureRecord = { customer_id: string } & Record<string, number | string | null>;

const DAY_MS = 86_400_000;
const SESSION_GAP_MS = 30 * 60_000;

function utcDay(ts: number): number {
  return Math.floor(ts / DAY_MS);
}

/** customer_features rows for events grouped by customer (events in time order per customer). */
export function featuresFromEvents(events: Iterable<Event>, asOf: Date): FeatureRecord[] {
  const byCustomer = new Map<string, Event[]>();
  for (const e of events) {
    const list = byCustomer.get(e.customer_id);
    if (list) list.push(e);
    else byCustomer.set(e.customer_id, [e]);
  }
  // A campaign's launch is its first interaction by anyone.
  const launch = new Map<string, number>();
  for (const list of byCustomer.values()) {
    for (const e of list) {
      if (e.type !== 'email_open' && e.type !== 'email_click') continue;
      const id = (e.properties as { campaign_id: string }).campaign_id;
      const ts = Date.parse(e.ts);
      if (!launch.has(id) || ts < launch.get(id)!) launch.set(id, ts);
    }
  }
  const asOfDay = utcDay(asOf.getTime() - 1);
  const out: FeatureRecord[] = [];
  for (const [customerId, list] of byCustomer) {
    const times = list.map((e) => Date.parse(e.ts));
    const firstSeen = Math.min(...times);
    const tenure = Math.max(asOfDay - utcDay(firstSeen), 0);
    const days = new Set(times.map(utcDay)).size;
    const web = list
      .filter((e) => e.type === 'page_view' || e.type === 'click')
      .sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts) || (a.event_id < b.event_id ? -1 : 1));
    let sessions = 0;
    let prev: number | undefined;
    for (const e of web) {
      const t = Date.parse(e.ts);
      if (prev === undefined || t - prev >= SESSION_GAP_MS) sessions += 1;
      prev = t;
    }
    const pages = list.filter((e) => e.type === 'page_view');
    const duration = pages.reduce((s, e) => s + (e.properties as { duration_ms: number }).duration_ms, 0);
    const orders = list.filter((e) => e.type === 'purchase');
    const monetary = orders.reduce((s, e) => s + (e.properties as { amount: number }).amount, 0);
    const lastOrder = orders.length > 0 ? Math.max(...orders.map((e) => Date.parse(e.ts))) : undefined;
    const opened = new Set<string>();
    const clicked = new Set<string>();
    for (const e of list) {
      if (e.type === 'email_open' || e.type === 'email_click') opened.add((e.properties as { campaign_id: string }).campaign_id);
      if (e.type === 'email_click') clicked.add((e.properties as { campaign_id: string }).campaign_id);
    }
    const received = new Set(opened);
    for (const [id, at] of launch) if (at >= firstSeen) received.add(id);
    // Each demographic is the latest value any profile_update carried, as in customer_features.sql.
    const updates = list
      .filter((e) => e.type === 'profile_update')
      .sort((a, b) => Date.parse(b.ts) - Date.parse(a.ts) || (a.event_id < b.event_id ? 1 : -1));
    const latest = (key: string): string | number | null => {
      for (const e of updates) {
        const v = (e.properties as Record<string, unknown>)[key];
        if (typeof v === 'string' || typeof v === 'number') return v;
      }
      return null;
    };
    out.push({
      customer_id: customerId,
      tenure_days: tenure,
      days_active: days,
      engagement_frequency: days / (tenure + 1),
      web_sessions: sessions,
      sessions_per_week: (sessions * 7) / Math.max(tenure + 1, 7),
      pages_per_session: sessions > 0 ? pages.length / sessions : null,
      avg_time_on_page_ms: pages.length > 0 ? duration / pages.length : null,
      cart_adds: list.filter((e) => e.type === 'add_to_cart').length,
      recency_days: lastOrder === undefined ? null : Math.max(asOfDay - utcDay(lastOrder), 0),
      frequency: orders.length,
      monetary: Math.round(monetary * 100) / 100,
      email_open_rate: received.size > 0 ? opened.size / received.size : null,
      email_ctr: opened.size > 0 ? clicked.size / opened.size : null,
      app_sessions: list.filter((e) => e.type === 'app_session').length,
      age: latest('age'),
      gender: latest('gender'),
      country: latest('country'),
      income_band: latest('income_band'),
      updated_at: asOf.toISOString(),
    });
  }
  return out;
}

export interface PersonaPopulation {
  rows: FeatureRecord[];
  /** Persona index (PERSONAS order; PERSONAS.length for the demographic twin) per row. */
  truth: Int32Array;
  personas: readonly Persona[];
}

/**
 * `n` demo customers with `eventsPerCustomer` events each over `days` days before `asOf`, and
 * their feature rows. Customers without any event are left out (they would have no row).
 */
export function personaPopulation(
  n: number,
  seed: number,
  opts: { asOf: Date; days?: number; eventsPerCustomer?: number; idPrefix?: string; demographicTwin?: boolean },
): PersonaPopulation {
  const population = makePopulation(n, seed, { idPrefix: opts.idPrefix ?? 'cust', demographicTwin: opts.demographicTwin === true });
  const from = new Date(opts.asOf.getTime() - (opts.days ?? 60) * DAY_MS);
  const events = generateEvents(population, { from, to: opts.asOf, seed, eventsPerCustomer: opts.eventsPerCustomer ?? 60 });
  const rows = featuresFromEvents(events, opts.asOf);
  // The demographic twin is group PERSONAS.length.
  const personaOf = new Map(population.map((c) => [c.customer_id, c.twin ? PERSONAS.length : PERSONAS.indexOf(c.persona)]));
  return { rows, truth: Int32Array.from(rows.map((r) => personaOf.get(r.customer_id)!)), personas: PERSONAS };
}

/**
 * Many feature rows fast, without events: each persona's typical values with multiplicative
 * noise and ~3% missing values; for volume tests (SQL vs TypeScript agreement) where only the
 * numbers matter.
 */
export function syntheticFeatureRows(n: number, seed: number, asOf: Date, idPrefix = 'syn'): FeatureRecord[] {
  return syntheticPersonaRows(n, seed, asOf, { idPrefix }).rows;
}

/**
 * syntheticFeatureRows with the persona of each row (PERSONAS order); with `demographicTwin`, half
 * of DEMOGRAPHIC_TWIN.behavesAs's rows are its twin (group PERSONAS.length): the same behaviour,
 * other age band and country.
 */
export function syntheticPersonaRows(
  n: number,
  seed: number,
  asOf: Date,
  opts: { idPrefix?: string; demographicTwin?: boolean } = {},
): { rows: FeatureRecord[]; truth: Int32Array } {
  const idPrefix = opts.idPrefix ?? 'syn';
  const rows: FeatureRecord[] = [];
  const truth = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const rng = createRng(deriveSeed(seed, 'row', i));
    const persona = rng.weighted(Object.fromEntries(PERSONAS.map((p) => [p, PERSONA_BEHAVIOUR[p].share])) as Record<Persona, number>);
    // Demographics from their own stream, so the behavioural columns stay what they always were.
    const drng = createRng(deriveSeed(seed, 'demographics', i));
    const twin = opts.demographicTwin === true && persona === DEMOGRAPHIC_TWIN.behavesAs && drng.chance(DEMOGRAPHIC_TWIN.share);
    const { age, gender, country, income_band } = drawDemographics(drng, persona, twin);
    const dmiss = <T>(v: T): T | null => (drng.chance(0.03) ? null : v);
    truth[i] = twin ? PERSONAS.length : PERSONAS.indexOf(persona);
    const b = PERSONA_BEHAVIOUR[persona];
    const miss = <T>(v: T): T | null => (rng.chance(0.03) ? null : v);
    const sessions = rng.poisson(20 * b.activity * b.channels.web);
    const orders = rng.poisson(12 * b.cartRate * b.buyRate * b.activity);
    const tenure = rng.int(0, 365);
    const days = Math.min(tenure + 1, 1 + rng.poisson(10 * b.activity));
    rows.push({
      customer_id: `${idPrefix}-${String(i).padStart(7, '0')}`,
      tenure_days: tenure,
      days_active: days,
      engagement_frequency: miss(days / (tenure + 1)),
      web_sessions: sessions,
      sessions_per_week: miss((sessions * 7) / Math.max(tenure + 1, 7)),
      pages_per_session: sessions > 0 ? miss(Math.max(1, rng.logNormal(b.pagesPerSession, 0.3))) : null,
      avg_time_on_page_ms: sessions > 0 ? miss(rng.logNormal(b.pageSecondsMedian * 1000, 0.4)) : null,
      cart_adds: rng.poisson(12 * b.cartRate * b.activity),
      recency_days: orders > 0 ? miss(rng.int(0, 120)) : null,
      frequency: orders,
      monetary: orders > 0 ? Math.round(orders * rng.logNormal(b.basketMedianUsd, b.basketSigma) * 100) / 100 : 0,
      email_open_rate: miss(Math.min(1, Math.max(0, rng.normal(b.channels.email, 0.1)))),
      email_ctr: miss(Math.min(1, Math.max(0, rng.normal(b.emailClickRate, 0.1)))),
      app_sessions: rng.poisson(20 * b.activity * b.channels.app),
      age: dmiss(age),
      gender: dmiss(gender),
      country: dmiss(country),
      income_band: dmiss(income_band),
      updated_at: asOf.toISOString(),
    });
  }
  return { rows, truth };
}

/**
 * (Re)creates `<dataset>.<table>` with FEATURE_COLUMNS and loads the rows with one load job from
 * an NDJSON object in `bucket` (streaming inserts are slow on the emulator, and it does not
 * take load jobs from a local upload).
 */
export async function loadFeatureTable(
  clients: { bigquery: BigQuery; storage: Storage },
  target: { dataset: string; bucket: string; table?: string },
  rows: readonly FeatureRecord[],
): Promise<void> {
  const { bigquery, storage } = clients;
  const table = target.table ?? 'customer_features';
  const ds = bigquery.dataset(target.dataset);
  const [exists] = await ds.exists();
  if (!exists) await bigquery.createDataset(target.dataset, { location: 'US' });
  const [bucketExists] = await storage.bucket(target.bucket).exists();
  if (!bucketExists) await storage.createBucket(target.bucket);
  await ds.table(table).delete({ ignoreNotFound: true });
  const [created] = await ds.createTable(table, { schema: { fields: FEATURE_COLUMNS.map((f) => ({ ...f })) } });
  const file = storage.bucket(target.bucket).file(`fixtures/${target.dataset}/${table}-${Date.now()}.ndjson`);
  await file.save(rows.map((r) => JSON.stringify(r)).join('\n') + '\n', { resumable: false, contentType: 'application/x-ndjson' });
  await created.load(file, { sourceFormat: 'NEWLINE_DELIMITED_JSON', writeDisposition: 'WRITE_TRUNCATE' });
}

/** Deletes what loadFeatureTable and the runs on it left: the dataset with its tables, the bucket with its objects. */
export async function dropFeatureTarget(
  clients: { bigquery: BigQuery; storage: Storage },
  target: { dataset: string; bucket: string },
): Promise<void> {
  await clients.bigquery
    .dataset(target.dataset)
    .delete({ force: true })
    .catch(() => undefined);
  const bucket = clients.storage.bucket(target.bucket);
  await bucket.deleteFiles({ force: true }).catch(() => undefined);
  await bucket.delete().catch(() => undefined);
}
