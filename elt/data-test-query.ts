/** The one query that runs all of a model's data tests, and the verdict read from its rows. */
import type { DataTest } from './data-tests.js';
import { SqlModelError, quoteColumn } from './names.js';

/**
 * Parameter values data test queries bind: interval_start, interval_end, baseline_start_<i>
 * (row_count_drop) and accepted_values_<i>. The caller passes only those the SQL references.
 */
export type DataTestParams = Record<string, Date | string[]>;

export interface DataTestQuery {
  readonly sql: string;
  readonly params: DataTestParams;
}

const whereOf = (where: string | undefined, extra?: string) => {
  const parts = [where === undefined ? undefined : `(${where})`, extra].filter((p): p is string => p !== undefined);
  return parts.length === 0 ? '' : ` WHERE ${parts.join(' AND ')}`;
};

/**
 * One query for all of a model's tests (one job instead of one per test): a UNION ALL of one
 * row per test, `test` = the test's index, `a`/`b` counts and `latest` a time, as each test
 * needs them. `evaluateDataTests` reads the rows back.
 */
export function dataTestsQuery(tests: readonly DataTest[], table: string, interval: { start: Date; end: Date }): DataTestQuery {
  if (tests.length === 0) throw new SqlModelError('dataTestsQuery: expected at least one test');
  const params: DataTestParams = { interval_start: interval.start, interval_end: interval.end };
  const row = (i: number, a: string, b: string, latest: string, from: string) =>
    `SELECT ${i} AS test, CAST(${a} AS INT64) AS a, CAST(${b} AS INT64) AS b, CAST(${latest} AS TIMESTAMP) AS latest FROM ${from}`;
  const parts = tests.map((test, i) => {
    switch (test.type) {
      case 'unique': {
        const cols = test.columns.map(quoteColumn).join(', ');
        return row(
          i,
          'COUNT(*)',
          'NULL',
          'NULL',
          `(SELECT ${cols} FROM ${table}${whereOf(test.where)} GROUP BY ${cols} HAVING COUNT(*) > 1)`,
        );
      }
      case 'not_null':
        return row(i, `COUNTIF(${quoteColumn(test.column)} IS NULL)`, 'NULL', 'NULL', `${table}${whereOf(test.where)}`);
      case 'accepted_values': {
        const c = quoteColumn(test.column);
        params[`accepted_values_${i}`] = [...test.values];
        return row(
          i,
          `COUNTIF(${c} IS NOT NULL AND CAST(${c} AS STRING) NOT IN UNNEST(@accepted_values_${i}))`,
          'NULL',
          'NULL',
          `${table}${whereOf(test.where)}`,
        );
      }
      case 'expression':
        // A NULL result fails: write `x IS NULL OR ...` where NULL is acceptable.
        return row(i, `COUNTIF(NOT COALESCE((${test.expression}), FALSE))`, 'NULL', 'NULL', `${table}${whereOf(test.where)}`);
      case 'row_count_drop': {
        const c = quoteColumn(test.timestampColumn);
        const lengthMs = interval.end.getTime() - interval.start.getTime();
        params[`baseline_start_${i}`] = new Date(interval.start.getTime() - test.lookbackIntervals * lengthMs);
        return row(
          i,
          `COUNTIF(${c} >= @interval_start)`,
          `COUNTIF(${c} < @interval_start)`,
          'NULL',
          `${table} WHERE ${c} >= @baseline_start_${i} AND ${c} < @interval_end`,
        );
      }
      case 'freshness': {
        const c = quoteColumn(test.column);
        return row(i, 'NULL', 'NULL', `MAX(${c})`, `${table}${whereOf(test.where, `${c} <= @interval_end`)}`);
      }
    }
  });
  return { sql: parts.join('\nUNION ALL\n'), params };
}

export interface DataTestOutcome {
  readonly name: string;
  readonly type: DataTest['type'];
  readonly severity: 'error' | 'warn';
  readonly passed: boolean;
  /** Offending rows or keys; for row_count_drop the rows of the interval; for freshness the age in minutes (-1: no rows). */
  readonly failures: number;
  readonly message: string;
}

function numberOf(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string') return Number(value);
  if (value !== null && typeof value === 'object' && 'value' in value) return Number((value as { value: unknown }).value);
  return Number.NaN;
}

function instantOf(value: unknown): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (value instanceof Date) return value.getTime();
  const text = typeof value === 'object' && 'value' in value ? String((value as { value: unknown }).value) : String(value);
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Pass or fail per test, from the rows `dataTestsQuery`'s SQL returned. */
export function evaluateDataTests(
  tests: readonly DataTest[],
  rows: readonly Readonly<Record<string, unknown>>[],
  interval: { start: Date; end: Date },
): DataTestOutcome[] {
  const byIndex = new Map(rows.map((r) => [numberOf(r.test), r]));
  return tests.map((test, i) => {
    const row = byIndex.get(i);
    if (row === undefined) throw new SqlModelError(`data test ${test.name}: the test query returned no row for it`);
    return evaluateDataTest(test, row, interval);
  });
}

function evaluateDataTest(test: DataTest, row: Readonly<Record<string, unknown>>, interval: { start: Date; end: Date }): DataTestOutcome {
  const result = (passed: boolean, failures: number, message: string): DataTestOutcome => ({
    name: test.name,
    type: test.type,
    severity: test.severity,
    passed,
    failures,
    message,
  });
  const n = numberOf(row.a);
  switch (test.type) {
    case 'unique':
      return result(n === 0, n, `${n} value(s) of (${test.columns.join(', ')}) occur more than once; expected every value once`);
    case 'not_null':
      return result(n === 0, n, `${n} row(s) have ${test.column} NULL; expected a value in every row`);
    case 'accepted_values':
      return result(n === 0, n, `${n} row(s) have ${test.column} outside the accepted values [${test.values.join(', ')}]`);
    case 'expression':
      return result(n === 0, n, `${n} row(s) do not satisfy ${test.expression}`);
    case 'row_count_drop': {
      const average = numberOf(row.b) / test.lookbackIntervals;
      const floor = (1 - test.maxDrop) * average;
      const passed = average < test.minBaseline || n >= floor;
      return result(
        passed,
        n,
        `${n} row(s) in the interval vs a trailing average of ${average.toFixed(2)} over ${test.lookbackIntervals} interval(s); ` +
          `expected at least ${floor.toFixed(2)} (a drop of at most ${Math.round(test.maxDrop * 100)}%)`,
      );
    }
    case 'freshness': {
      const latest = instantOf(row.latest);
      if (latest === undefined) {
        return result(
          false,
          -1,
          `no rows with ${test.column} at or before ${interval.end.toISOString()}; expected one within ${test.maxAgeMs / 60_000} minute(s)`,
        );
      }
      const ageMs = interval.end.getTime() - latest;
      const minutes = Math.round(ageMs / 60_000);
      return result(
        ageMs <= test.maxAgeMs,
        minutes,
        `newest ${test.column} is ${minutes} minute(s) old at the interval end; expected at most ${test.maxAgeMs / 60_000}`,
      );
    }
  }
}
