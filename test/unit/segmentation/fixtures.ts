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
      const row: Record<string, number | null> = {};
      PERSONA_FEATURES.forEach((f, j) => {
        const c = p.centre[j]!;
        let v: number;
        if (f.name.endsWith('_days')) v = Math.max(0, c * (1 + 0.15 * rng.normal(0, 1)));
        else if (f.name === 'discount_share') v = Math.min(1, Math.max(0, c + 0.06 * rng.normal(0, 1)));
        else v = Math.round(Math.max(0, (c + 0.5) * Math.exp(0.25 * rng.normal(0, 1)) - 0.5) * 100) / 100;
        row[f.name] = rng.next() < 0.03 ? null : v;
      });
      rows.push(row);
    }
  });
  return { rows, truth };
}
