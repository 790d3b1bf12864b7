/**
 * Feature preparation: from raw customer features to the space k-means works in.
 *
 * Per feature, in this order (sql.ts emits the same steps in the same order):
 *   1. impute: a missing or non-finite value becomes the training median (raw units);
 *   2. log (optional): x -> ln(1 + max(x, 0)), for skewed money and count features;
 *   3. scale: (x - min) / (max - min), clipped to [0, 1]; a feature that was
 *      constant in training (max == min) scales to 0;
 *   4. weight: multiply by the feature's weight.
 *
 * The fitted Preparation is plain JSON so it travels inside the model artifact.
 */
import { z } from 'zod';
import { parseOrThrow } from './validate.js';

/** Feature and column names become SQL identifiers, so only this shape is accepted. */
export const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/**
 * What a feature means to a marketer. Labels (labels.ts) are written from these
 * roles, never from guesses about column names.
 */
export const FeatureRoleSchema = z.enum([
  'recency', // days since the last purchase: high means lapsing
  'frequency', // number of orders
  'monetary', // spend
  'tenure', // days since first seen: low means new
  'email', // email opens / clicks
  'app', // app sessions
  'browse', // web page views / sessions
  'cart', // add-to-cart activity
  'discount', // share of orders with a discount
]);
export type FeatureRole = z.infer<typeof FeatureRoleSchema>;

export const FeatureSpecSchema = z.object({
  name: z.string().regex(IDENTIFIER, 'expected a lowercase identifier such as monetary_90d (letters, digits, underscores)'),
  weight: z.number().positive('expected a weight > 0'),
  log: z.boolean().optional(),
  role: FeatureRoleSchema.optional(),
});
export type FeatureSpec = z.infer<typeof FeatureSpecSchema>;

export const FeatureSpecListSchema = z
  .array(FeatureSpecSchema)
  .min(1, 'expected at least one feature')
  .superRefine((features, ctx) => {
    const seen = new Set<string>();
    for (const f of features) {
      if (seen.has(f.name)) ctx.addIssue({ code: 'custom', message: `feature ${f.name} is listed twice` });
      seen.add(f.name);
    }
  });

export const PreparedFeatureSchema = z.object({
  name: z.string().regex(IDENTIFIER),
  weight: z.number().positive(),
  log: z.boolean(),
  role: FeatureRoleSchema.optional(),
  /** Training median in raw units, used for missing values. */
  fill: z.number(),
  /** Min and max after imputation and log, over the training rows. */
  min: z.number(),
  max: z.number(),
  /** Share of training rows where the value was missing (a data-quality figure). */
  missing_share: z.number().min(0).max(1),
});
export type PreparedFeature = z.infer<typeof PreparedFeatureSchema>;

export const PreparationSchema = z.object({
  features: z.array(PreparedFeatureSchema).min(1),
  training_rows: z.number().int().positive(),
});
export type Preparation = z.infer<typeof PreparationSchema>;

/** One customer's raw features, keyed by feature name. */
export type FeatureRow = Readonly<Record<string, number | null | undefined>>;

function isPresent(v: number | null | undefined): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/**
 * ln(1 + x) written as Math.log(1 + x), not Math.log1p: BigQuery has no LOG1P,
 * so the SQL computes LN(1 + x), and rounding 1 + x first on both sides keeps
 * the two paths on the same double. log1p's extra accuracy only matters for
 * x far below 1e-8, which min-max scaling erases anyway.
 */
function logTransform(x: number): number {
  return Math.log(1 + Math.max(x, 0));
}

function median(values: number[]): number {
  values.sort((a, b) => a - b);
  const mid = values.length >> 1;
  return values.length % 2 === 1 ? values[mid]! : (values[mid - 1]! + values[mid]!) / 2;
}

/** Fits imputation and scaling on training rows. */
export function fitPreparation(rows: readonly FeatureRow[], spec: readonly FeatureSpec[]): Preparation {
  const features = parseOrThrow(FeatureSpecListSchema, spec, 'feature spec');
  if (rows.length === 0) throw new Error('fitPreparation: expected at least one training row, got none');
  const prepared = features.map((f): PreparedFeature => {
    const observed: number[] = [];
    for (const row of rows) {
      const v = row[f.name];
      if (isPresent(v)) observed.push(v);
    }
    // A feature with no observed value is constant after imputation and so drops out (scales to 0).
    const fill = observed.length > 0 ? median(observed) : 0;
    const log = f.log === true;
    let min = Infinity;
    let max = -Infinity;
    for (const row of rows) {
      const v = row[f.name];
      let x = isPresent(v) ? v : fill;
      if (log) x = logTransform(x);
      if (x < min) min = x;
      if (x > max) max = x;
    }
    return {
      name: f.name,
      weight: f.weight,
      log,
      ...(f.role ? { role: f.role } : {}),
      fill,
      min,
      max,
      missing_share: (rows.length - observed.length) / rows.length,
    };
  });
  return { features: prepared, training_rows: rows.length };
}

/** The prepared value of one feature; sql.ts mirrors this expression step for step. */
export function prepareValue(f: PreparedFeature, raw: number | null | undefined): number {
  let x = isPresent(raw) ? raw : f.fill;
  if (f.log) x = logTransform(x);
  const range = f.max - f.min;
  const scaled = range > 0 ? Math.min(Math.max((x - f.min) / range, 0), 1) : 0;
  return scaled * f.weight;
}

export function applyPreparation(prep: Preparation, row: FeatureRow): number[] {
  return prep.features.map((f) => prepareValue(f, row[f.name]));
}

/** Prepares many rows into a flat row-major Float64Array (rows.length * features). */
export function prepareMatrix(prep: Preparation, rows: readonly FeatureRow[]): Float64Array {
  const dim = prep.features.length;
  const out = new Float64Array(rows.length * dim);
  rows.forEach((row, r) => {
    prep.features.forEach((f, j) => {
      out[r * dim + j] = prepareValue(f, row[f.name]);
    });
  });
  return out;
}

/**
 * Back from prepared space to raw units (un-weight, un-scale, un-log), for
 * describing centroids. Clipping is not invertible; centroids are means of
 * clipped values and so always lie inside the scaled range.
 */
export function toOriginalUnits(prep: Preparation, vector: ArrayLike<number>): number[] {
  if (vector.length !== prep.features.length) {
    throw new Error(`toOriginalUnits: expected ${prep.features.length} values, got ${vector.length}`);
  }
  return prep.features.map((f, j) => {
    const scaled = (vector[j] as number) / f.weight;
    const x = f.min + scaled * (f.max - f.min);
    return f.log ? Math.expm1(x) : x;
  });
}

/** The feature names of a preparation, in vector order. */
export function featureNames(prep: Preparation): string[] {
  return prep.features.map((f) => f.name);
}
