/** Data tests declared next to a model, in `<model>.tests.json`: the file format and its parsing. */
import { z } from 'zod';
import { parseDuration } from '../core/time.js';
import { IDENTIFIER, SqlModelError } from './names.js';

const severity = z.enum(['error', 'warn']).default('error');
const testName = z
  .string()
  .regex(/^[a-z_][a-z0-9_]*$/, 'expected a lowercase test name')
  .optional();
const where = z.string().min(1).optional();
const column = z.string().regex(IDENTIFIER, 'expected a column name');
const duration = z.string().regex(/^\d+(?:\.\d+)?(?:s|m|h|d)$/, 'expected a duration such as 90m, 2h or 1d');

const DataTestSpecSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('unique'), columns: z.array(column).min(1), where, severity, name: testName }).strict(),
  z.object({ type: z.literal('not_null'), columns: z.array(column).min(1), where, severity, name: testName }).strict(),
  z
    .object({
      type: z.literal('accepted_values'),
      column,
      values: z.array(z.union([z.string(), z.number(), z.boolean()])).min(1),
      where,
      severity,
      name: testName,
    })
    .strict(),
  z
    .object({ type: z.literal('expression'), name: z.string().regex(/^[a-z_][a-z0-9_]*$/), expression: z.string().min(1), where, severity })
    .strict(),
  z
    .object({
      type: z.literal('row_count_drop'),
      /** Column that places a row in an interval (e.g. its arrival hour). */
      timestamp_column: column,
      /** Trailing intervals (of the run's length) averaged as the baseline. */
      lookback_intervals: z.number().int().min(1).max(1000),
      /** Largest tolerated drop below the baseline, as a share (0.5 = half). */
      max_drop: z.number().gt(0).max(1),
      /** Below this baseline average the test passes: too little traffic to judge. */
      min_baseline: z.number().min(0).default(1),
      severity,
      name: testName,
    })
    .strict(),
  z
    .object({
      type: z.literal('freshness'),
      column,
      /** Oldest tolerated age of the newest row at the interval end. */
      max_age: duration,
      where,
      severity,
      name: testName,
    })
    .strict(),
]);
export type DataTestSpec = z.infer<typeof DataTestSpecSchema>;

const DataTestFileSchema = z.object({ tests: z.array(DataTestSpecSchema) }).strict();

/** One runnable test. `not_null` over several columns becomes one test per column. */
export type DataTest = (
  | { readonly type: 'unique'; readonly columns: readonly string[]; readonly where?: string }
  | { readonly type: 'not_null'; readonly column: string; readonly where?: string }
  | { readonly type: 'accepted_values'; readonly column: string; readonly values: readonly string[]; readonly where?: string }
  | { readonly type: 'expression'; readonly expression: string; readonly where?: string }
  | {
      readonly type: 'row_count_drop';
      readonly timestampColumn: string;
      readonly lookbackIntervals: number;
      readonly maxDrop: number;
      readonly minBaseline: number;
    }
  | { readonly type: 'freshness'; readonly column: string; readonly maxAgeMs: number; readonly where?: string }
) & { readonly name: string; readonly severity: 'error' | 'warn' };

export function parseDataTests(model: string, json: string): DataTest[] {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (error) {
    throw new SqlModelError(
      `tests of model ${model}: expected JSON, found text that does not parse (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  const parsed = DataTestFileSchema.safeParse(data);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`);
    throw new SqlModelError(`tests of model ${model}: ${problems.join('; ')}`);
  }
  const tests: DataTest[] = [];
  for (const spec of parsed.data.tests) {
    const opt = <K extends string, V>(key: K, value: V | undefined) => (value === undefined ? {} : ({ [key]: value } as Record<K, V>));
    switch (spec.type) {
      case 'unique':
        tests.push({
          type: 'unique',
          columns: spec.columns,
          name: spec.name ?? `unique_${spec.columns.join('_')}`,
          severity: spec.severity,
          ...opt('where', spec.where),
        });
        break;
      case 'not_null':
        if (spec.name !== undefined && spec.columns.length > 1) {
          throw new SqlModelError(
            `tests of model ${model}: not_null test "${spec.name}" lists ${spec.columns.length} columns; a named not_null test takes one column (unnamed ones expand to not_null_<column>)`,
          );
        }
        for (const c of spec.columns) {
          tests.push({
            type: 'not_null',
            column: c,
            name: spec.name ?? `not_null_${c}`,
            severity: spec.severity,
            ...opt('where', spec.where),
          });
        }
        break;
      case 'accepted_values':
        tests.push({
          type: 'accepted_values',
          column: spec.column,
          // Compared as strings so one ARRAY<STRING> parameter serves strings, numbers and booleans.
          values: spec.values.map((v) => String(v)),
          name: spec.name ?? `accepted_values_${spec.column}`,
          severity: spec.severity,
          ...opt('where', spec.where),
        });
        break;
      case 'expression':
        tests.push({
          type: 'expression',
          expression: spec.expression,
          name: spec.name,
          severity: spec.severity,
          ...opt('where', spec.where),
        });
        break;
      case 'row_count_drop':
        tests.push({
          type: 'row_count_drop',
          timestampColumn: spec.timestamp_column,
          lookbackIntervals: spec.lookback_intervals,
          maxDrop: spec.max_drop,
          minBaseline: spec.min_baseline,
          name: spec.name ?? `row_count_drop_${spec.timestamp_column}`,
          severity: spec.severity,
        });
        break;
      case 'freshness':
        tests.push({
          type: 'freshness',
          column: spec.column,
          maxAgeMs: parseDuration(spec.max_age),
          name: spec.name ?? `freshness_${spec.column}`,
          severity: spec.severity,
          ...opt('where', spec.where),
        });
        break;
    }
  }
  const seen = new Set<string>();
  for (const t of tests) {
    if (seen.has(t.name)) throw new SqlModelError(`tests of model ${model}: two tests are named ${t.name}; give one a "name"`);
    seen.add(t.name);
  }
  return tests;
}
