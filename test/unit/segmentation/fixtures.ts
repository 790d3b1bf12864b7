/** Synthetic data for the segmentation tests: seeded, so every run sees the same rows. */
import { createRng } from '../../../core/random.js';
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
