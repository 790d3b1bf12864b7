/** Synthetic data for the segmentation tests: seeded, so every run sees the same rows. */
import { createRng } from '../../../core/random.js';
import { DEMOGRAPHIC_TWIN } from '../../../demo/personas.js';
import type { FeatureRow, FeatureSpec } from '../../../core/segmentation/prepare.js';

/** `perBlob` points around each centre with standard deviation `sd`, rows in blob order. */
export function blobs(centres: readonly (readonly number[])[], perBlob: number, sd: number, seed: number) {
  const rng = createRng(seed);
  const dim = centres[0]!.length;
  const nRows = centres.length * perBlob;
  const matrix = new Float64Array(nRows * dim);
  const truth = new Int32Array(nRows);
  centres.forEach((centre, b) => {
    for (let i = 0; i < perBlob; i++) {
      const r = b * perBlob + i;
      truth[r] = b;
      for (let j = 0; j < dim; j++) matrix[r * dim + j] = centre[j]! + sd * rng.normal(0, 1);
    }
  });
  return { matrix, nRows, dim, truth };
}

export const PERSONA_FEATURES: FeatureSpec[] = [
  { name: 'recency_days', weight: 1, role: 'recency' },
  { name: 'orders_12m', weight: 1, log: true, role: 'frequency' },
  { name: 'spend_12m', weight: 1, log: true, role: 'monetary' },
  { name: 'tenure_days', weight: 1, role: 'tenure' },
  { name: 'email_clicks_90d', weight: 0.8, log: true, role: 'email' },
  { name: 'app_sessions_30d', weight: 0.8, log: true, role: 'app' },
  { name: 'page_views_30d', weight: 0.8, log: true, role: 'browse' },
  { name: 'discount_share', weight: 0.8, role: 'discount' },
];

interface Persona {
  name: string;
  /** Typical raw values, in PERSONA_FEATURES order. */
  centre: number[];
}

/** Five customer types a marketer would recognise, and the label each should get. */
export const PERSONAS: Persona[] = [
  { name: 'high-value loyal', centre: [8, 24, 2400, 900, 6, 12, 40, 0.1] },
  { name: 'at risk', centre: [170, 9, 900, 850, 1, 1, 6, 0.15] },
  { name: 'new', centre: [12, 1, 70, 25, 3, 3, 15, 0.25] },
  { name: 'window shoppers', centre: [300, 0, 0, 420, 1, 1, 120, 0] },
  { name: 'bargain hunters', centre: [45, 6, 260, 500, 2, 2, 20, 0.75] },
];

/**
 * Customers drawn around the personas: days get additive noise, counts and
 * money multiplicative (log-normal) noise, shares stay in [0, 1], and about
 * 3% of values are missing.
 */
export function personaRows(perPersona: number, seed: number): { rows: FeatureRow[]; truth: Int32Array } {
  const rng = createRng(seed);
  const rows: FeatureRow[] = [];
  const truth = new Int32Array(PERSONAS.length * perPersona);
  PERSONAS.forEach((p, pi) => {
    for (let i = 0; i < perPersona; i++) {
      truth[rows.length] = pi;
      rows.push(personaRow(rng, p.centre, 1));
    }
  });
  return { rows, truth };
}

/** One customer around `centre`, with the noise of personaRows scaled by `spread` (1: personaRows' own). */
function personaRow(rng: ReturnType<typeof createRng>, centre: readonly number[], spread: number): FeatureRow {
  const row: Record<string, number | null> = {};
  PERSONA_FEATURES.forEach((f, j) => {
    const c = centre[j]!;
    let v: number;
    if (f.name.endsWith('_days')) v = Math.max(0, c * (1 + 0.15 * spread * rng.normal(0, 1)));
    else if (f.name === 'discount_share') v = Math.min(1, Math.max(0, c + 0.06 * spread * rng.normal(0, 1)));
    else v = Math.round(Math.max(0, (c + 0.5) * Math.exp(0.25 * spread * rng.normal(0, 1)) - 0.5) * 100) / 100;
    row[f.name] = rng.next() < 0.03 ? null : v;
  });
  return row;
}

/**
 * Nine customer types on PERSONA_FEATURES, each fitting a different labelling rule: the five
 * personas and four more, so data with up to nine groups can be told apart by label too.
 */
export const GROUPS: Persona[] = [
  ...PERSONAS,
  { name: 'email-engaged', centre: [40, 4, 300, 600, 40, 1, 15, 0.1] },
  { name: 'app-first', centre: [20, 5, 350, 500, 1, 60, 5, 0.1] },
  { name: 'lapsed', centre: [400, 1, 60, 1000, 0, 0, 2, 0.1] },
  { name: 'big spenders', centre: [60, 3, 3000, 700, 2, 2, 20, 0.05] },
];

/**
 * Customers of the first `sizes.length` GROUPS, `sizes[g]` of group g with its noise scaled by
 * `spreads[g]`, plus `noiseShare` of the rows (truth -1) mixing features of random groups: rows
 * that belong to no group, as real data has.
 */
export function groupRows(
  sizes: readonly number[],
  spreads: readonly number[],
  noiseShare: number,
  seed: number,
): { rows: FeatureRow[]; truth: Int32Array } {
  const rng = createRng(seed);
  const groups = GROUPS.slice(0, sizes.length);
  if (groups.length < sizes.length) throw new Error(`groupRows: at most ${GROUPS.length} groups, asked for ${sizes.length}`);
  const rows: FeatureRow[] = [];
  const truth: number[] = [];
  groups.forEach((g, gi) => {
    for (let i = 0; i < sizes[gi]!; i++) {
      truth.push(gi);
      rows.push(personaRow(rng, g.centre, spreads[gi] ?? 1));
    }
  });
  const noise = Math.round((rows.length * noiseShare) / (1 - noiseShare));
  for (let i = 0; i < noise; i++) {
    const mixed = PERSONA_FEATURES.map((_, j) => rng.pick(groups).centre[j]!);
    truth.push(-1);
    rows.push(personaRow(rng, mixed, 1.5));
  }
  return { rows, truth: Int32Array.from(truth) };
}

/** The demographics that tell the twin apart (age band, country), weighted to be decisive. */
export const TWIN_DEMOGRAPHICS: FeatureSpec[] = [
  { name: 'age', weight: 0.8 },
  { name: 'country', kind: 'categorical', weight: 0.8, top: 4 },
];

/**
 * personaRows plus a sixth group, the demographic twin of PERSONAS[0]: the same behaviour, but
 * DEMOGRAPHIC_TWIN's age band and country (demo/personas.ts). Every row also has age, gender,
 * country and income_band; the five personas draw them alike, so only the twin stands out.
 */
export function twinPersonaRows(perPersona: number, seed: number): { rows: FeatureRow[]; truth: Int32Array } {
  const rng = createRng(seed);
  const rows: FeatureRow[] = [];
  const groups = [...PERSONAS, PERSONAS[0]!];
  const truth = new Int32Array(groups.length * perPersona);
  const countries = { US: 0.4, GB: 0.2, DE: 0.2, FR: 0.2 };
  const income = { low: 0.2, lower_middle: 0.2, middle: 0.2, upper_middle: 0.2, high: 0.2 };
  groups.forEach((p, pi) => {
    const twin = pi === PERSONAS.length;
    for (let i = 0; i < perPersona; i++) {
      truth[rows.length] = pi;
      const age = twin ? DEMOGRAPHIC_TWIN.age : { mean: 45, sd: 12 };
      const miss = <T>(v: T): T | null => (rng.chance(0.03) ? null : v);
      rows.push({
        ...personaRow(rng, p.centre, 1),
        age: miss(Math.min(90, Math.max(18, Math.round(rng.normal(age.mean, age.sd))))),
        gender: miss(rng.weighted({ female: 0.5, male: 0.5 })),
        country: miss(rng.weighted((twin ? DEMOGRAPHIC_TWIN.countries : countries) as Record<string, number>)),
        income_band: miss(rng.weighted(income)),
      });
    }
  });
  return { rows, truth };
}
