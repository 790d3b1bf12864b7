/**
 * Feature preparation: from raw customer features to the space k-means works in.
 *
 * Per dimension, in this order (sql.ts emits the same steps in the same order):
 *   1. impute: a missing or non-finite number becomes the training median (raw units); a
 *      missing or unknown ordinal level the median rank; a missing category the most
 *      frequent training value (empty strings count as missing);
 *   2. encode: numeric x, or ln(1 + max(x, 0)) when `log` (skewed money and counts); ordinal
 *      the level's rank (0 for the lowest); one-hot 1 when the value falls in this
 *      dimension's bucket (a kept value, or `other` for every value not kept), else 0;
 *   3. scale: (x - min) / (max - min), clipped to [0, 1]; a dimension that was
 *      constant in training (max == min) scales to 0;
 *   4. weight: multiply by the dimension's weight.
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

/** A categorical or ordinal value as it appears in the data (sent to SQL as a parameter, never inlined). */
const CategorySchema = z.string().min(1, 'expected a non-empty value').max(200, 'expected at most 200 characters');

/** Numeric (default), categorical (one-hot, with an `other` bucket) or ordinal (levels in their natural order). */
export const FeatureKindSchema = z.enum(['numeric', 'categorical', 'ordinal']);
export type FeatureKind = z.infer<typeof FeatureKindSchema>;

/** How many values a categorical feature keeps when it names neither `top` nor `categories`. */
export const DEFAULT_TOP_CATEGORIES = 5;

export const FeatureSpecSchema = z
  .object({
    name: z.string().regex(IDENTIFIER, 'expected a lowercase identifier such as monetary_90d (letters, digits, underscores)'),
    weight: z.number().positive('expected a weight > 0'),
    kind: FeatureKindSchema.optional(),
    log: z.boolean().optional(),
    role: FeatureRoleSchema.optional(),
    /** categorical: keep the `top` most frequent training values, the rest go to `other`. */
    top: z.number().int().min(1).max(50).optional(),
    /** categorical: a fixed list of values instead of the most frequent ones (the rest go to `other`). */
    categories: z.array(CategorySchema).min(1).optional(),
    /** ordinal: every level, lowest first; a value outside the list counts as missing. */
    levels: z.array(CategorySchema).min(2).optional(),
  })
  .superRefine((f, ctx) => {
    const kind = f.kind ?? 'numeric';
    const only = (field: 'log' | 'top' | 'categories' | 'levels', allowed: FeatureKind) => {
      if (f[field] !== undefined && kind !== allowed) {
        ctx.addIssue({ code: 'custom', path: [field], message: `${field} applies to ${allowed} features only (${f.name} is ${kind})` });
      }
    };
    only('log', 'numeric');
    only('top', 'categorical');
    only('categories', 'categorical');
    only('levels', 'ordinal');
    if (kind === 'ordinal' && f.levels === undefined) {
      ctx.addIssue({ code: 'custom', path: ['levels'], message: `ordinal feature ${f.name} needs its levels, lowest first` });
    }
    if (f.top !== undefined && f.categories !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['top'], message: `give ${f.name} either top or categories, not both` });
    }
    for (const list of [f.categories, f.levels]) {
      if (list && new Set(list).size !== list.length) {
        ctx.addIssue({ code: 'custom', path: [f.categories === list ? 'categories' : 'levels'], message: 'values must be unique' });
      }
    }
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

/**
 * One dimension of the prepared vector. A numeric or ordinal feature is one dimension; a
 * categorical feature is one dimension per kept value plus one for `other` (kind `onehot`).
 */
export const PreparedFeatureSchema = z
  .object({
    /** The feature name; for a one-hot dimension `column=value`, or `column=(other)`. */
    name: z.string().min(1).max(300),
    /** The source column when it differs from name (one-hot dimensions). */
    column: z.string().regex(IDENTIFIER).optional(),
    /** Absent: numeric (models trained before categorical features had none). */
    kind: z.enum(['numeric', 'ordinal', 'onehot']).optional(),
    /** The multiplier after scaling (a one-hot dimension carries the feature weight / sqrt 2). */
    weight: z.number().positive(),
    log: z.boolean(),
    role: FeatureRoleSchema.optional(),
    /** How a missing value is filled: the training median (numeric: raw units; ordinal: level rank) or the most frequent value (one-hot). Absent: median. */
    impute: z.enum(['median', 'mode']).optional(),
    /** Training median in raw units (ordinal: rank), used for missing values; 0 for one-hot. */
    fill: z.number(),
    /** ordinal: the levels, lowest first (rank = index). */
    levels: z.array(CategorySchema).min(2).optional(),
    /** onehot: the values of this column that have their own dimension, in dimension order (none when training saw no value). */
    categories: z.array(CategorySchema).optional(),
    /** onehot: the value this dimension is 1 for; null for the `other` bucket. */
    category: CategorySchema.nullable().optional(),
    /** onehot: the most frequent training value, used for missing values. */
    fill_category: CategorySchema.optional(),
    /** Min and max after imputation and log (ordinal: rank; one-hot: 0 or 1), over the training rows. */
    min: z.number(),
    max: z.number(),
    /** Share of training rows where the value was missing (a data-quality figure). */
    missing_share: z.number().min(0).max(1),
  })
  .superRefine((f, ctx) => {
    const kind = f.kind ?? 'numeric';
    if (kind === 'onehot') {
      if (!f.column || !f.categories || f.category === undefined || f.fill_category === undefined) {
        ctx.addIssue({ code: 'custom', message: `one-hot dimension ${f.name} needs column, categories, category and fill_category` });
      } else if (f.category !== null && !f.categories.includes(f.category)) {
        ctx.addIssue({ code: 'custom', path: ['category'], message: `${f.category} is not among the categories of ${f.column}` });
      }
    } else {
      if (!IDENTIFIER.test(f.name))
        ctx.addIssue({ code: 'custom', path: ['name'], message: `expected a lowercase identifier, got ${f.name}` });
      if (kind === 'ordinal' && !f.levels)
        ctx.addIssue({ code: 'custom', path: ['levels'], message: `ordinal dimension ${f.name} needs levels` });
    }
  });
export type PreparedFeature = z.infer<typeof PreparedFeatureSchema>;

export const PreparationSchema = z.object({
  features: z.array(PreparedFeatureSchema).min(1),
  training_rows: z.number().int().positive(),
});
export type Preparation = z.infer<typeof PreparationSchema>;

/** One customer's raw features, keyed by column name: numbers, and strings for categorical and ordinal columns. */
export type FeatureValue = number | string | null | undefined;
export type FeatureRow = Readonly<Record<string, FeatureValue>>;

function isPresent(v: FeatureValue): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** A categorical value is present when it is a non-empty string (SQL: NOT NULL and not ''). */
function isPresentCategory(v: FeatureValue): v is string {
  return typeof v === 'string' && v.length > 0;
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

/** The column a dimension reads. */
export function dimensionColumn(f: PreparedFeature): string {
  return f.column ?? f.name;
}

/** Onehot dimension names: `country=DE`, and `country=(other)` for the rest. */
export function onehotName(column: string, category: string | null): string {
  return `${column}=${category ?? '(other)'}`;
}

/** The fill of a categorical feature that training never saw a value of. */
const NO_VALUE = '(none)';

/** So that two customers in different categories are as far apart as the whole range of a numeric feature of the same weight. */
const ONEHOT_SCALE = Math.SQRT1_2;

/** The value a dimension scales, before min-max (numeric: raw or log; ordinal: rank; onehot: 1 or 0). */
function encode(f: PreparedFeature, raw: FeatureValue): number {
  switch (f.kind ?? 'numeric') {
    case 'numeric': {
      const x = isPresent(raw) ? raw : f.fill;
      return f.log ? logTransform(x) : x;
    }
    case 'ordinal': {
      const rank = isPresentCategory(raw) ? f.levels!.indexOf(raw) : -1;
      return rank >= 0 ? rank : f.fill;
    }
    case 'onehot': {
      const value = isPresentCategory(raw) ? raw : f.fill_category!;
      const bucket = f.categories!.includes(value) ? value : null;
      return bucket === f.category ? 1 : 0;
    }
  }
}

function bounds(values: Iterable<number>): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const x of values) {
    if (x < min) min = x;
    if (x > max) max = x;
  }
  return { min, max };
}

/** Values by descending training count, ties by code-unit order, so a refit on the same rows keeps the same order. */
function byFrequency(counts: ReadonlyMap<string, number>): string[] {
  return [...counts.keys()].sort((a, b) => counts.get(b)! - counts.get(a)! || (a < b ? -1 : a > b ? 1 : 0));
}

function fitNumeric(rows: readonly FeatureRow[], f: FeatureSpec): PreparedFeature {
  const observed: number[] = [];
  for (const row of rows) {
    const v = row[f.name];
    if (isPresent(v)) observed.push(v);
  }
  // A feature with no observed value is constant after imputation and so drops out (scales to 0).
  const fill = observed.length > 0 ? median(observed) : 0;
  const partial: PreparedFeature = {
    name: f.name,
    weight: f.weight,
    log: f.log === true,
    ...(f.role ? { role: f.role } : {}),
    impute: 'median',
    fill,
    min: 0,
    max: 0,
    missing_share: (rows.length - observed.length) / rows.length,
  };
  return { ...partial, ...bounds(rows.map((row) => encode(partial, row[f.name]))) };
}

function fitOrdinal(rows: readonly FeatureRow[], f: FeatureSpec): PreparedFeature {
  const levels = f.levels!;
  const ranks: number[] = [];
  for (const row of rows) {
    const v = row[f.name];
    const rank = isPresentCategory(v) ? levels.indexOf(v) : -1;
    if (rank >= 0) ranks.push(rank);
  }
  const partial: PreparedFeature = {
    name: f.name,
    kind: 'ordinal',
    weight: f.weight,
    log: false,
    ...(f.role ? { role: f.role } : {}),
    impute: 'median',
    fill: ranks.length > 0 ? median(ranks) : 0,
    levels,
    min: 0,
    max: 0,
    missing_share: (rows.length - ranks.length) / rows.length,
  };
  return { ...partial, ...bounds(rows.map((row) => encode(partial, row[f.name]))) };
}

function fitCategorical(rows: readonly FeatureRow[], f: FeatureSpec): PreparedFeature[] {
  const counts = new Map<string, number>();
  let observed = 0;
  for (const row of rows) {
    const v = row[f.name];
    if (!isPresentCategory(v)) continue;
    observed += 1;
    counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  const ranked = byFrequency(counts);
  const categories = f.categories ?? ranked.slice(0, f.top ?? DEFAULT_TOP_CATEGORIES);
  // With no observed value every row is missing: the first category stands in (or, with none, a
  // placeholder that falls into `other`), and every dimension is constant, so it scales to 0.
  const fillCategory = ranked[0] ?? categories[0] ?? NO_VALUE;
  return [...categories, null].map((category) => {
    const partial: PreparedFeature = {
      name: onehotName(f.name, category),
      column: f.name,
      kind: 'onehot',
      weight: f.weight * ONEHOT_SCALE,
      log: false,
      ...(f.role ? { role: f.role } : {}),
      impute: 'mode',
      fill: 0,
      categories,
      category,
      fill_category: fillCategory,
      min: 0,
      max: 0,
      missing_share: (rows.length - observed) / rows.length,
    };
    return { ...partial, ...bounds(rows.map((row) => encode(partial, row[f.name]))) };
  });
}

/** Fits imputation, encoding and scaling on training rows. */
export function fitPreparation(rows: readonly FeatureRow[], spec: readonly FeatureSpec[]): Preparation {
  const features = parseOrThrow(FeatureSpecListSchema, spec, 'feature spec');
  if (rows.length === 0) throw new Error('fitPreparation: expected at least one training row, got none');
  const prepared = features.flatMap((f): PreparedFeature[] => {
    switch (f.kind ?? 'numeric') {
      case 'numeric':
        return [fitNumeric(rows, f)];
      case 'ordinal':
        return [fitOrdinal(rows, f)];
      case 'categorical':
        return fitCategorical(rows, f);
    }
  });
  return { features: prepared, training_rows: rows.length };
}

function scale(f: PreparedFeature, x: number): number {
  const range = f.max - f.min;
  const scaled = range > 0 ? Math.min(Math.max((x - f.min) / range, 0), 1) : 0;
  return scaled * f.weight;
}

/** The prepared value of one dimension; sql.ts mirrors this expression step for step. */
export function prepareValue(f: PreparedFeature, raw: FeatureValue): number {
  return scale(f, encode(f, raw));
}

export function applyPreparation(prep: Preparation, row: FeatureRow): number[] {
  return prep.features.map((f) => prepareValue(f, row[dimensionColumn(f)]));
}

/** Prepares many rows into a flat row-major Float64Array (rows.length * dimensions). */
export function prepareMatrix(prep: Preparation, rows: readonly FeatureRow[]): Float64Array {
  const dim = prep.features.length;
  const columns = prep.features.map(dimensionColumn);
  const out = new Float64Array(rows.length * dim);
  rows.forEach((row, r) => {
    prep.features.forEach((f, j) => {
      out[r * dim + j] = prepareValue(f, row[columns[j]!]);
    });
  });
  return out;
}

/** From prepared space back to the encoded value (numeric: after log; ordinal: rank; onehot: share). */
function unscale(f: PreparedFeature, v: number): number {
  return f.min + (v / f.weight) * (f.max - f.min);
}

/**
 * Back from prepared space to raw units (un-weight, un-scale, un-log), for
 * describing centroids: an ordinal dimension comes back as a (fractional) level
 * rank, a one-hot dimension as the share of the segment with that value.
 * Clipping is not invertible; centroids are means of clipped values and so
 * always lie inside the scaled range.
 */
export function toOriginalUnits(prep: Preparation, vector: ArrayLike<number>): number[] {
  if (vector.length !== prep.features.length) {
    throw new Error(`toOriginalUnits: expected ${prep.features.length} values, got ${vector.length}`);
  }
  return prep.features.map((f, j) => {
    const x = unscale(f, vector[j] as number);
    return f.log ? Math.expm1(x) : x;
  });
}

/**
 * A vector prepared with `from` expressed in `to`'s prepared space (same dimensions, refitted
 * bounds), through the encoded value, so a refitted scaler does not move a centroid.
 */
export function translateVector(from: Preparation, to: Preparation, vector: ArrayLike<number>): number[] {
  return to.features.map((f, j) => scale(f, unscale(from.features[j]!, vector[j] as number)));
}

/** The feature names of a preparation, in vector order. */
export function featureNames(prep: Preparation): string[] {
  return prep.features.map((f) => f.name);
}
