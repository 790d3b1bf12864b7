/**
 * BigQuery GoogleSQL that assigns every customer with a model, computing
 * exactly what prepare.ts and assign.ts compute in TypeScript:
 *
 *   impute   IF(ABS(x) <= DBL_MAX, x, fill)   (NULL, NaN and +-Inf fail the test and take the fill)
 *            categorical and ordinal columns are read as STRING: IF(s IS NULL OR s = '', mode, s)
 *   encode   ordinal: COALESCE(CASE s WHEN level0 THEN 0.0 WHEN level1 THEN 1.0 ... END, fill rank)
 *            one-hot: IF(s = value, 1.0, 0.0); the `other` bucket IF(s = v0 OR s = v1 ..., 0.0, 1.0)
 *   log      LN(1.0 + GREATEST(x, 0.0))          (TS: Math.log(1 + Math.max(x, 0)))
 *   scale    LEAST(GREATEST((x - min) / range, 0.0), 1.0), or 0.0 when range is 0
 *   weight   * weight
 *   distance (x0 - c0) * (x0 - c0) + (x1 - c1) * (x1 - c1) + ...   left to right
 *   nearest  best = LEAST(d0, ..., dk-1); the index is the first c with dc = best,
 *            so a tie goes to the lowest centroid index, as the strict `<` in TypeScript
 *   margin   the smallest distance among the other centroids, minus best (0 on a tie)
 *   parent   the parent segment id of the winner, from the model's hierarchy (hierarchy.ts)
 *
 * The results match bit for bit: + - * / and comparisons are correctly rounded
 * in V8, BigQuery and the emulator, the SQL performs them in the same order on
 * the same doubles (shortest round-trip literals, range precomputed as TS does),
 * and LEAST returns one of its inputs. Only LN comes from each engine's libm and
 * can differ in the last bit, so the query also returns `margin`: a disagreement
 * with margin below ~1e-12 is a near tie, not a bug.
 *
 * Shape: one pass, plain arithmetic per row, nothing for BigQuery to shuffle.
 * Each step after `prepared` also reads the step before it through
 * `UNION ALL ... WHERE FALSE` (pruned by BigQuery) because the emulator inlines
 * a CTE read once into every column that refers to it, re-evaluating each
 * feature per distance, and materialises one read twice. No UNNEST: the emulator
 * turns whole-number FLOAT64 array elements into INT64, and `x - 0.5` goes wrong.
 * Only model numbers we generated are written into the SQL; names come from the
 * validated spec; everything else is a parameter, category values and levels included
 * (@feature_values, read by OFFSET), since they come from the data.
 */
import { parentOfSegment } from './hierarchy.js';
import type { SegmentModel } from './model.js';
import { IDENTIFIER, dimensionColumn } from './prepare.js';
import type { PreparedFeature } from './prepare.js';

export interface AssignmentSqlOptions {
  /** `dataset.table` or `project.dataset.table`; default `marts.customer_features`. */
  sourceTable?: string;
  /** The customer key column; default `customer_id`. */
  idColumn?: string;
  /** Column per feature where it differs from the feature name. */
  featureColumns?: Readonly<Record<string, string>>;
  /** Also return segment_label, read from the @segment_labels parameter; default true. */
  includeLabels?: boolean;
}

export interface AssignmentSql {
  sql: string;
  /** Named query parameters the SQL expects, with their values for this model. */
  params: { model_version: string; segment_labels?: string[]; feature_values?: string[] };
  /** BigQuery types of the parameters (for clients that can't infer them, e.g. an empty array). */
  types: { model_version: 'STRING'; segment_labels?: ['STRING']; feature_values?: ['STRING'] };
  /** Output columns, in order. */
  columns: string[];
}

const TABLE_PART = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PROJECT = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;

function checkIdentifier(what: string, name: string): string {
  if (!IDENTIFIER.test(name)) {
    throw new Error(`assignmentSql: ${what} ${JSON.stringify(name)} is not a plain lowercase identifier (${IDENTIFIER.source})`);
  }
  return name;
}

function checkTable(table: string): string {
  const parts = table.split('.');
  const ok =
    (parts.length === 2 && parts.every((p) => TABLE_PART.test(p))) ||
    (parts.length === 3 && PROJECT.test(parts[0]!) && TABLE_PART.test(parts[1]!) && TABLE_PART.test(parts[2]!));
  if (!ok) throw new Error(`assignmentSql: source table ${JSON.stringify(table)} is not dataset.table or project.dataset.table`);
  return table;
}

/**
 * A FLOAT64 literal for a model number: JavaScript's shortest round-trip
 * decimal, which BigQuery parses back to the same double. Always has a `.` or
 * an exponent so it is never read as INT64, and negatives are parenthesised
 * so `x - -0.5` can never turn into a `--` comment.
 */
export function floatLiteral(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`assignmentSql: model number ${x} is not finite; the model artifact is corrupt`);
  const v = Object.is(x, -0) ? 0 : x;
  let s = String(v);
  if (!/[.e]/.test(s)) s += '.0';
  return v < 0 ? `(${s})` : s;
}

function intLiteral(n: number): string {
  if (!Number.isSafeInteger(n)) throw new Error(`assignmentSql: ${n} is not a safe integer`);
  return String(n);
}

/** Category values and levels, each written once into @feature_values and read back by OFFSET. */
class ValueParams {
  readonly values: string[] = [];
  private readonly index = new Map<string, number>();
  ref(value: string): string {
    let i = this.index.get(value);
    if (i === undefined) {
      i = this.values.length;
      this.values.push(value);
      this.index.set(value, i);
    }
    return `@feature_values[OFFSET(${intLiteral(i)})]`;
  }
}

/** The imputed value of dimension j: a FLOAT64 for numeric dimensions, a STRING for ordinal and one-hot ones. */
function imputedExpression(f: PreparedFeature, raw: string, values: ValueParams): string {
  const kind = f.kind ?? 'numeric';
  if (kind === 'numeric') return `IF(ABS(${raw}) <= ${floatLiteral(Number.MAX_VALUE)}, ${raw}, ${floatLiteral(f.fill)})`;
  if (kind === 'ordinal') return raw;
  return `IF(${raw} IS NULL OR ${raw} = '', ${values.ref(f.fill_category!)}, ${raw})`;
}

/** The encoded FLOAT64 (prepare.ts `encode`) of an imputed value. */
function encodedExpression(f: PreparedFeature, imputed: string, values: ValueParams): string {
  switch (f.kind ?? 'numeric') {
    case 'numeric':
      return f.log ? `LN(1.0 + GREATEST(${imputed}, 0.0))` : imputed;
    case 'ordinal': {
      // NULL, '' and unknown levels match no WHEN and take the median rank, as in TypeScript.
      const whens = f.levels!.map((level, rank) => `WHEN ${values.ref(level)} THEN ${floatLiteral(rank)}`);
      return `COALESCE(CASE ${imputed} ${whens.join(' ')} END, ${floatLiteral(f.fill)})`;
    }
    case 'onehot': {
      if (f.category !== null && f.category !== undefined) return `IF(${imputed} = ${values.ref(f.category)}, 1.0, 0.0)`;
      const kept = f.categories!.map((c) => `${imputed} = ${values.ref(c)}`);
      return kept.length > 0 ? `IF(${kept.join(' OR ')}, 0.0, 1.0)` : '1.0';
    }
  }
}

function preparedExpression(f: PreparedFeature, imputed: string, values: ValueParams): string {
  const range = f.max - f.min;
  if (!(range > 0)) return '0.0';
  const x = encodedExpression(f, imputed, values);
  return `LEAST(GREATEST((${x} - ${floatLiteral(f.min)}) / ${floatLiteral(range)}, 0.0), 1.0) * ${floatLiteral(f.weight)}`;
}

export function assignmentSql(model: SegmentModel, options: AssignmentSqlOptions = {}): AssignmentSql {
  const table = checkTable(options.sourceTable ?? 'marts.customer_features');
  const idColumn = checkIdentifier('id column', options.idColumn ?? 'customer_id');
  const includeLabels = options.includeLabels ?? true;
  const features = model.preparation.features;
  const columns = features.map((f) =>
    checkIdentifier(`column for feature ${f.name}`, options.featureColumns?.[dimensionColumn(f)] ?? dimensionColumn(f)),
  );
  for (const name of Object.keys(options.featureColumns ?? {})) {
    if (!features.some((f) => dimensionColumn(f) === name))
      throw new Error(`assignmentSql: featureColumns names ${name}, which is not a model feature`);
  }
  const k = model.centroids.length;
  if (k === 0 || model.segments.length !== k) {
    throw new Error(`assignmentSql: model ${model.version} has ${k} centroids and ${model.segments.length} segments`);
  }

  const ind = (n: number) => ' '.repeat(n);
  const list = (items: string[], indent: number) => items.map((s) => ind(indent) + s).join(',\n');
  const step = (name: string, items: string[], from: string, blank: string[] | null) =>
    [
      `${name} AS (`,
      '  SELECT',
      list(items, 4),
      `  FROM ${from}`,
      // A second read of `from` that yields nothing: see the header for why.
      ...(blank ? [`  UNION ALL SELECT ${blank.join(', ')} FROM ${from} WHERE FALSE`] : []),
      ')',
    ].join('\n');

  const values = new ValueParams();
  const source = [
    `\`${idColumn}\` AS customer_id`,
    ...columns.map((c, j) => `CAST(\`${c}\` AS ${(features[j]!.kind ?? 'numeric') === 'numeric' ? 'FLOAT64' : 'STRING'}) AS r${j}`),
  ];
  const imputed = ['customer_id', ...features.map((f, j) => `${imputedExpression(f, `r${j}`, values)} AS i${j}`)];
  const prepared = ['customer_id', ...features.map((f, j) => `${preparedExpression(f, `i${j}`, values)} AS x${j}`)];
  const dNames = Array.from({ length: k }, (_, c) => `d${c}`);
  const distances = [
    'customer_id',
    ...model.centroids.map((centroid, c) => {
      if (centroid.length !== features.length) {
        throw new Error(`assignmentSql: centroid ${c} has ${centroid.length} values for ${features.length} features`);
      }
      const terms = centroid.map((v, j) => {
        const lit = floatLiteral(v);
        return `(x${j} - ${lit}) * (x${j} - ${lit})`;
      });
      return `${terms.join(' + ')} AS d${c}`;
    }),
  ];
  const nearest = ['customer_id', ...dNames, k > 1 ? `LEAST(${dNames.join(', ')}) AS best` : 'd0 AS best'];
  // The first index whose distance equals the minimum: ties go to the lowest index.
  const whens = dNames.slice(0, -1).map((d, c) => `WHEN ${d} = best THEN ${intLiteral(c)}`);
  const idx = k > 1 ? `CASE ${whens.join(' ')} ELSE ${intLiteral(k - 1)} END AS idx` : '0 AS idx';
  const ranked = ['customer_id', ...dNames, 'best', idx];
  // Runner-up: the least distance once the winner's is swapped for a neighbour's (already in the list).
  const others = dNames.map((d, c) => `IF(idx = ${intLiteral(c)}, ${dNames[(c + 1) % k]}, ${d})`);
  const ids = `[${model.segments.map((s) => intLiteral(s.id)).join(', ')}]`;
  // Nested segments: the parent id per centroid index, as parentSegmentOf reads it in TypeScript (NULL without a hierarchy).
  const parentOf = model.hierarchy
    ? parentOfSegment(
        model.hierarchy,
        model.segments.map((s) => s.id),
      )
    : null;
  const parent = parentOf
    ? `[${model.segments.map((s) => intLiteral(parentOf.get(s.id)!)).join(', ')}][OFFSET(idx)] AS parent_segment`
    : 'CAST(NULL AS INT64) AS parent_segment';
  const output = [
    'customer_id',
    `${ids}[OFFSET(idx)] AS segment_id`,
    ...(includeLabels ? ['@segment_labels[OFFSET(idx)] AS segment_label'] : []),
    parent,
    '@model_version AS model_version',
    'best AS distance',
    k > 1 ? `LEAST(${others.join(', ')}) - best AS margin` : 'CAST(NULL AS FLOAT64) AS margin',
  ];
  const nulls = (n: number) => ['customer_id', ...Array.from({ length: n }, () => 'NULL')];

  const sql = [
    '-- segflow nearest-centroid assignment, generated by core/segmentation/sql.ts from a model artifact.',
    `-- Parameters: @model_version STRING${includeLabels ? ', @segment_labels ARRAY<STRING> (label per centroid index)' : ''}${
      values.values.length > 0 ? ', @feature_values ARRAY<STRING> (category values and levels)' : ''
    }.`,
    `WITH ${step('source', source, `\`${table}\``, null)},`,
    `${step('imputed', imputed, 'source', null)},`,
    `${step('prepared', prepared, 'imputed', null)},`,
    `${step('distances', distances, 'prepared', nulls(k))},`,
    `${step('nearest', nearest, 'distances', nulls(k + 1))},`,
    `${step('ranked', ranked, 'nearest', nulls(k + 2))}`,
    'SELECT',
    list(output, 2),
    'FROM ranked',
    '',
  ].join('\n');

  return {
    sql,
    params: {
      model_version: model.version,
      ...(includeLabels ? { segment_labels: model.segments.map((s) => s.label) } : {}),
      ...(values.values.length > 0 ? { feature_values: values.values } : {}),
    },
    types: {
      model_version: 'STRING',
      ...(includeLabels ? { segment_labels: ['STRING'] as ['STRING'] } : {}),
      ...(values.values.length > 0 ? { feature_values: ['STRING'] as ['STRING'] } : {}),
    },
    columns: [
      'customer_id',
      'segment_id',
      ...(includeLabels ? ['segment_label'] : []),
      'parent_segment',
      'model_version',
      'distance',
      'margin',
    ],
  };
}
