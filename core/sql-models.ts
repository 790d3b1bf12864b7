/**
 * dbt-style SQL models: one `.sql` file per model under `sql/`, dependencies from
 * `{{ ref('model') }}` and `{{ source('raw', 'events') }}`, a per-model config header,
 * data tests next to the model (`sql/<model>.tests.json`).
 *
 * Pure and free of Node modules: the graph helpers (`sqlModelTasks`, `dataTestTasks`) run
 * inside workflow code through the DAG definitions. Reading the files is the caller's job
 * (activities/warehouse.ts).
 *
 * Values never enter SQL text: rendering only substitutes fully-qualified table names, and
 * everything that varies per run (the data interval, accepted values, ...) travels as
 * `@named` query parameters.
 */
import { z } from 'zod';
import { findCycle, topologicalOrder } from './dag-graph.js';

// ---------------------------------------------------------------------------
// Names

export const LOGICAL_DATASETS = ['raw', 'staging', 'marts'] as const;
export type LogicalDataset = (typeof LOGICAL_DATASETS)[number];

/** Where logical datasets live: the project and the dataset names from the configuration. */
export interface WarehouseTarget {
  readonly projectId: string;
  readonly datasets: Readonly<Record<LogicalDataset, string>>;
}

/** The query parameters every model may use; bound to the run's data interval, [start, end). */
export const INTERVAL_PARAMS = ['interval_start', 'interval_end'] as const;

/** The activities behind the DAG tasks built here. */
export const SQL_MODEL_ACTIVITY = 'runSqlModel';
export const DATA_TEST_ACTIVITY = 'runDataTests';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,1023}$/;
const MODEL_NAME = /^[a-z_][a-z0-9_]{0,127}$/;
const PROJECT_ID = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;

export function isIdentifier(value: string): boolean {
  return IDENTIFIER.test(value);
}

function assertIdentifier(what: string, value: string): string {
  if (!IDENTIFIER.test(value)) {
    throw new SqlModelError(`${what}: expected a BigQuery identifier (letters, digits, underscores), found ${JSON.stringify(value)}`);
  }
  return value;
}

/** `` `project.dataset.table` `` after checking every part, so nothing but names reaches SQL. */
export function qualifiedTable(projectId: string, dataset: string, table: string): string {
  if (!PROJECT_ID.test(projectId)) throw new SqlModelError(`project id: expected a GCP project id, found ${JSON.stringify(projectId)}`);
  assertIdentifier('dataset', dataset);
  assertIdentifier('table', table);
  return `\`${projectId}.${dataset}.${table}\``;
}

export function quoteColumn(column: string): string {
  return `\`${assertIdentifier('column', column)}\``;
}

export class SqlModelError extends Error {
  override readonly name = 'SqlModelError';
}

/** Every problem of a set of models, so one run of the loader lists them all. */
export class SqlProjectError extends Error {
  override readonly name = 'SqlProjectError';

  constructor(readonly problems: readonly string[]) {
    super(`The SQL models are invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

// ---------------------------------------------------------------------------
// Model config header

const identifierList = (what: string) =>
  z
    .string()
    .transform((v) => v.trim().split(/\s+/))
    .pipe(z.array(z.string().regex(IDENTIFIER, `expected ${what} as space-separated column names`)).min(1));

/** `DATE(col)`, `col` (a DATE or an integer range is not needed yet) or `TIMESTAMP_TRUNC(col, DAY|HOUR|MONTH|YEAR)`. */
const PARTITION_EXPRESSION = /^(?:[A-Za-z_][A-Za-z0-9_]*|DATE\(\s*[A-Za-z_][A-Za-z0-9_]*\s*\)|TIMESTAMP_TRUNC\(\s*[A-Za-z_][A-Za-z0-9_]*\s*,\s*(?:HOUR|DAY|MONTH|YEAR)\s*\))$/i;

const ModelConfigSchema = z
  .object({
    materialized: z.enum(['table', 'incremental'], { error: 'expected materialized=table or materialized=incremental' }),
    dataset: z.enum(LOGICAL_DATASETS, { error: `expected dataset= one of ${LOGICAL_DATASETS.join(', ')}` }),
    /** Table name when it differs from the model name (dbt's alias). */
    alias: z.string().regex(IDENTIFIER, 'expected alias= a table name').optional(),
    /** incremental only: `merge` upserts on unique_key; `delete+insert` replaces every target row whose key the new rows carry. */
    strategy: z.enum(['merge', 'delete+insert'], { error: 'expected strategy=merge or strategy=delete+insert' }).optional(),
    unique_key: identifierList('unique_key').optional(),
    /** merge only: extra condition for updating a matched row, over aliases S (new) and T (existing). */
    merge_update_if: z.string().min(1).optional(),
    partition_by: z.string().regex(PARTITION_EXPRESSION, 'expected partition_by=column, DATE(column) or TIMESTAMP_TRUNC(column, DAY)').optional(),
    cluster_by: identifierList('cluster_by').pipe(z.array(z.string()).max(4, 'expected at most 4 cluster_by columns')).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.materialized === 'incremental') {
      if (c.strategy === undefined) ctx.addIssue({ code: 'custom', message: 'incremental models need strategy=merge or strategy=delete+insert' });
      if (c.unique_key === undefined) ctx.addIssue({ code: 'custom', message: 'incremental models need unique_key=<columns>' });
    } else {
      for (const key of ['strategy', 'unique_key', 'merge_update_if'] as const) {
        if (c[key] !== undefined) ctx.addIssue({ code: 'custom', message: `${key} applies to incremental models only` });
      }
    }
    if (c.merge_update_if !== undefined && c.strategy !== 'merge') {
      ctx.addIssue({ code: 'custom', message: 'merge_update_if applies to strategy=merge only' });
    }
  });

export type ModelConfig = z.infer<typeof ModelConfigSchema>;

const CONFIG_LINE = /^\s*--\s*config\s*:(.*)$/i;

/** Splits `a=1, b=f(x, y)` on top-level commas. */
function splitPairs(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth = Math.max(0, depth - 1);
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

/**
 * Reads the `-- config: key=value, key=value` lines of the leading comment block (several lines
 * merge; a key may appear once). A config line after the first SQL line is refused: it would
 * look like configuration and silently do nothing.
 */
export function parseModelConfig(model: string, sql: string): ModelConfig {
  const raw: Record<string, string> = {};
  let inHeader = true;
  for (const [index, line] of sql.split('\n').entries()) {
    const match = CONFIG_LINE.exec(line);
    if (match !== null) {
      if (!inHeader) {
        throw new SqlModelError(`model ${model}, line ${index + 1}: "-- config:" lines belong in the leading comment block, before any SQL`);
      }
      for (const pair of splitPairs(match[1] as string)) {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw new SqlModelError(`model ${model}, line ${index + 1}: expected key=value in the config header, found ${JSON.stringify(pair)}`);
        const key = pair.slice(0, eq).trim();
        if (key in raw) throw new SqlModelError(`model ${model}: config key ${key} is set twice`);
        raw[key] = pair.slice(eq + 1).trim();
      }
      continue;
    }
    const trimmed = line.trim();
    if (trimmed !== '' && !trimmed.startsWith('--')) inHeader = false;
  }
  const parsed = ModelConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message));
    throw new SqlModelError(`model ${model}: invalid config header (${problems.join('; ')})`);
  }
  return parsed.data;
}

// ---------------------------------------------------------------------------
// Templating: ref() and source()

export interface SourceRef {
  readonly dataset: LogicalDataset;
  readonly table: string;
}

type TemplateCall = { kind: 'ref'; model: string } | { kind: 'source'; dataset: LogicalDataset; table: string };

const TAG = /\{\{([\s\S]*?)\}\}/g;
const CALL = /^\s*(ref|source)\s*\(\s*((?:'[^']*'|"[^"]*")(?:\s*,\s*(?:'[^']*'|"[^"]*"))*)\s*\)\s*$/;

function parseTag(model: string, body: string): TemplateCall {
  const match = CALL.exec(body);
  if (match === null) {
    throw new SqlModelError(
      `model ${model}: unsupported template tag {{${body}}}; only {{ ref('model') }} and {{ source('raw', 'events') }} are allowed`,
    );
  }
  const args = [...(match[2] as string).matchAll(/'([^']*)'|"([^"]*)"/g)].map((m) => m[1] ?? m[2] ?? '');
  if (match[1] === 'ref') {
    if (args.length !== 1 || !MODEL_NAME.test(args[0] as string)) {
      throw new SqlModelError(`model ${model}: expected ref('model_name') with one lowercase model name, found {{${body}}}`);
    }
    return { kind: 'ref', model: args[0] as string };
  }
  const [dataset, table] = args;
  if (args.length !== 2 || !(LOGICAL_DATASETS as readonly string[]).includes(dataset as string) || !IDENTIFIER.test(table as string)) {
    throw new SqlModelError(
      `model ${model}: expected source('<${LOGICAL_DATASETS.join('|')}>', '<table>'), found {{${body}}}`,
    );
  }
  return { kind: 'source', dataset: dataset as LogicalDataset, table: table as string };
}

function templateCalls(model: string, sql: string): TemplateCall[] {
  for (const bad of ['{%', '{#']) {
    if (sql.includes(bad)) throw new SqlModelError(`model ${model}: unsupported template syntax "${bad}"; only {{ ref() }} and {{ source() }} are allowed`);
  }
  return [...sql.matchAll(TAG)].map((m) => parseTag(model, m[1] as string));
}

// ---------------------------------------------------------------------------
// Data tests (sql/<model>.tests.json)

const severity = z.enum(['error', 'warn']).default('error');
const testName = z.string().regex(/^[a-z_][a-z0-9_]*$/, 'expected a lowercase test name').optional();
const where = z.string().min(1).optional();
const column = z.string().regex(IDENTIFIER, 'expected a column name');
const duration = z
  .string()
  .regex(/^\d+(?:\.\d+)?(?:s|m|h|d)$/, 'expected a duration such as 90m, 2h or 1d');

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

const DURATION_MS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function durationMs(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(text) as RegExpExecArray;
  return Number(match[1]) * (DURATION_MS[match[2] as string] as number);
}

export function parseDataTests(model: string, json: string): DataTest[] {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (error) {
    throw new SqlModelError(`tests of model ${model}: expected JSON, found text that does not parse (${error instanceof Error ? error.message : String(error)})`);
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
        tests.push({ type: 'unique', columns: spec.columns, name: spec.name ?? `unique_${spec.columns.join('_')}`, severity: spec.severity, ...opt('where', spec.where) });
        break;
      case 'not_null':
        if (spec.name !== undefined && spec.columns.length > 1) {
          throw new SqlModelError(`tests of model ${model}: not_null test "${spec.name}" lists ${spec.columns.length} columns; a named not_null test takes one column (unnamed ones expand to not_null_<column>)`);
        }
        for (const c of spec.columns) {
          tests.push({ type: 'not_null', column: c, name: spec.name ?? `not_null_${c}`, severity: spec.severity, ...opt('where', spec.where) });
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
        tests.push({ type: 'expression', expression: spec.expression, name: spec.name, severity: spec.severity, ...opt('where', spec.where) });
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
        tests.push({ type: 'freshness', column: spec.column, maxAgeMs: durationMs(spec.max_age), name: spec.name ?? `freshness_${spec.column}`, severity: spec.severity, ...opt('where', spec.where) });
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

// ---------------------------------------------------------------------------
// Models and the project graph

export interface SqlModel {
  readonly name: string;
  /** The file text, header included (comments are valid SQL). */
  readonly sql: string;
  readonly config: ModelConfig;
  /** Models this one reads, in first-use order, without duplicates. */
  readonly refs: readonly string[];
  readonly sources: readonly SourceRef[];
  readonly tests: readonly DataTest[];
}

export interface SqlModelFile {
  readonly name: string;
  readonly sql: string;
  /** Contents of `<name>.tests.json`, if the model has one. */
  readonly tests?: string;
}

export function parseSqlModel(file: SqlModelFile): SqlModel {
  if (!MODEL_NAME.test(file.name)) {
    throw new SqlModelError(`model file ${JSON.stringify(file.name)}: expected a lowercase name (letters, digits, underscores) such as fct_orders`);
  }
  const config = parseModelConfig(file.name, file.sql);
  const calls = templateCalls(file.name, file.sql);
  const refs = [...new Set(calls.flatMap((c) => (c.kind === 'ref' ? [c.model] : [])))];
  const sourceKeys = new Set<string>();
  const sources: SourceRef[] = [];
  for (const c of calls) {
    if (c.kind !== 'source' || sourceKeys.has(`${c.dataset}.${c.table}`)) continue;
    sourceKeys.add(`${c.dataset}.${c.table}`);
    sources.push({ dataset: c.dataset, table: c.table });
  }
  const tests = file.tests === undefined ? [] : parseDataTests(file.name, file.tests);
  return { name: file.name, sql: file.sql, config, refs, sources, tests };
}

export interface SqlProject {
  /** Models in dependency order (a model after every model it refs), ties by name. */
  readonly models: readonly SqlModel[];
  readonly byName: ReadonlyMap<string, SqlModel>;
}

/** The table a model builds. */
export function modelTable(model: Pick<SqlModel, 'name' | 'config'>): { dataset: LogicalDataset; table: string } {
  return { dataset: model.config.dataset, table: model.config.alias ?? model.name };
}

/**
 * Validates a set of models as a whole: duplicate names or tables, refs to unknown models,
 * self-references and cycles. Throws SqlProjectError naming every problem.
 */
export function buildSqlProject(models: readonly SqlModel[]): SqlProject {
  const problems: string[] = [];
  const byName = new Map<string, SqlModel>();
  const tables = new Map<string, string>();
  for (const m of [...models].sort((a, b) => a.name.localeCompare(b.name))) {
    if (byName.has(m.name)) {
      problems.push(`model ${m.name} is defined twice`);
      continue;
    }
    byName.set(m.name, m);
    const { dataset, table } = modelTable(m);
    const owner = tables.get(`${dataset}.${table}`);
    if (owner !== undefined) problems.push(`models ${owner} and ${m.name} both build ${dataset}.${table}`);
    tables.set(`${dataset}.${table}`, m.name);
  }
  for (const m of byName.values()) {
    for (const r of m.refs) {
      if (r === m.name) problems.push(`model ${m.name} refs itself`);
      else if (!byName.has(r)) problems.push(`model ${m.name} refs unknown model "${r}"; add sql/${r}.sql or fix the ref`);
    }
    for (const s of m.sources) {
      const built = tables.get(`${s.dataset}.${s.table}`);
      if (built !== undefined) problems.push(`model ${m.name} reads source('${s.dataset}', '${s.table}'), which model ${built} builds; use ref('${built}')`);
    }
  }
  const nodes = [...byName.values()].map((m) => ({ id: m.name, upstream: m.refs.filter((r) => r !== m.name && byName.has(r)) }));
  const cycle = findCycle(nodes);
  // findCycle reads in execution order; reversed, each model is followed by one it refs.
  if (cycle !== undefined) problems.push(`models ref each other in a cycle: ${[...cycle].reverse().join(' refs ')}; remove one of these refs`);
  if (problems.length > 0) throw new SqlProjectError(problems);
  const order = topologicalOrder(nodes);
  return { models: order.map((name) => byName.get(name) as SqlModel), byName };
}

/**
 * The model's SQL with every ref()/source() replaced by `` `project.dataset.table` ``.
 * Nothing else changes: parameters stay `@interval_start` / `@interval_end`.
 */
export function renderModelSql(project: SqlProject, name: string, target: WarehouseTarget): string {
  const model = project.byName.get(name);
  if (model === undefined) throw new SqlModelError(`unknown model "${name}"; known models: ${[...project.byName.keys()].join(', ')}`);
  return model.sql.replace(TAG, (_whole, body: string) => {
    const call = parseTag(name, body);
    if (call.kind === 'source') return qualifiedTable(target.projectId, target.datasets[call.dataset], call.table);
    const ref = project.byName.get(call.model);
    if (ref === undefined) throw new SqlModelError(`model ${name} refs unknown model "${call.model}"`);
    const { dataset, table } = modelTable(ref);
    return qualifiedTable(target.projectId, target.datasets[dataset], table);
  });
}

/** The fully-qualified table a model builds. */
export function modelTableRef(model: Pick<SqlModel, 'name' | 'config'>, target: WarehouseTarget): string {
  const { dataset, table } = modelTable(model);
  return qualifiedTable(target.projectId, target.datasets[dataset], table);
}

/** Comments, string literals and quoted identifiers, in the order a lexer meets them. */
const SQL_TOKENS =
  /--[^\n]*|#[^\n]*|\/\*[\s\S]*?\*\/|'''[\s\S]*?'''|"""[\s\S]*?"""|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|`(?:\\.|[^`\\])*`/g;

/**
 * The statement without its comments (strings and quoted identifiers untouched; line breaks
 * kept so error positions still match the file). The BigQuery emulator mis-parses a CREATE
 * TABLE ... AS whose comments hold an unbalanced parenthesis (it silently returned one row).
 */
export function stripSqlComments(sql: string): string {
  return sql.replace(SQL_TOKENS, (token) => (token.startsWith('--') || token.startsWith('#') || token.startsWith('/*') ? token.replace(/[^\n]/g, '') : token));
}

/**
 * Named parameters (`@name`) a statement uses, outside comments, strings and quoted
 * identifiers. The caller binds exactly these: the BigQuery emulator refuses a query that is
 * given a parameter it does not use.
 */
export function referencedParams(sql: string): string[] {
  const stripped = sql.replace(SQL_TOKENS, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(^|[^@\w])@([A-Za-z_][A-Za-z0-9_]*)/g)) names.add(m[2] as string);
  return [...names];
}

// ---------------------------------------------------------------------------
// Materialization statements. Every table name passed in is already qualified (qualifiedTable);
// column names come from table metadata and are checked again by quoteColumn.

/** Staging tables of a run expire on their own if the run dies before dropping them. */
export function createTableAsSql(
  table: string,
  select: string,
  options: { partitionBy?: string | undefined; clusterBy?: readonly string[] | undefined; expiresInHours?: number | undefined } = {},
): string {
  const lines = [`CREATE TABLE ${table}`];
  if (options.partitionBy !== undefined) lines.push(`PARTITION BY ${options.partitionBy}`);
  if (options.clusterBy !== undefined && options.clusterBy.length > 0) lines.push(`CLUSTER BY ${options.clusterBy.map(quoteColumn).join(', ')}`);
  if (options.expiresInHours !== undefined) {
    if (!Number.isInteger(options.expiresInHours) || options.expiresInHours <= 0) throw new SqlModelError('expiresInHours: expected a positive whole number');
    lines.push(`OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL ${options.expiresInHours} HOUR))`);
  }
  lines.push('AS', select);
  return lines.join('\n');
}

export function dropTableSql(table: string): string {
  return `DROP TABLE IF EXISTS ${table}`;
}

/**
 * Upsert `source` into `target` on the key. The source is a table, not a subquery: the
 * emulator's MERGE accepts only a table reference as its source.
 */
export function mergeSql(target: string, source: string, columns: readonly string[], uniqueKey: readonly string[], updateIf?: string): string {
  const cols = columns.map(quoteColumn);
  const on = uniqueKey.map((k) => `T.${quoteColumn(k)} = S.${quoteColumn(k)}`).join(' AND ');
  const updates = columns.filter((c) => !uniqueKey.includes(c)).map((c) => `${quoteColumn(c)} = S.${quoteColumn(c)}`);
  return [
    `MERGE ${target} AS T`,
    `USING ${source} AS S`,
    `ON ${on}`,
    ...(updates.length > 0 ? [`WHEN MATCHED${updateIf === undefined ? '' : ` AND (${updateIf})`} THEN UPDATE SET ${updates.join(', ')}`] : []),
    `WHEN NOT MATCHED THEN INSERT (${cols.join(', ')}) VALUES (${cols.map((c) => `S.${c}`).join(', ')})`,
  ].join('\n');
}

/** Replace every target row whose key appears in `source` with the source rows, in one transaction. */
export function deleteInsertSql(target: string, source: string, columns: readonly string[], key: readonly string[]): string {
  const cols = columns.map(quoteColumn).join(', ');
  const keyCols = key.map(quoteColumn);
  const match =
    keyCols.length === 1
      ? `${keyCols[0]} IN (SELECT DISTINCT ${keyCols[0]} FROM ${source})`
      : `STRUCT(${keyCols.join(', ')}) IN (SELECT DISTINCT AS STRUCT ${keyCols.join(', ')} FROM ${source})`;
  return [
    'BEGIN TRANSACTION;',
    `DELETE FROM ${target} WHERE ${match};`,
    `INSERT INTO ${target} (${cols}) SELECT ${cols} FROM ${source};`,
    'COMMIT TRANSACTION;',
  ].join('\n');
}

/** Swap a table's contents for `source`'s in one transaction (readers never see it empty). */
export function replaceContentsSql(target: string, source: string, columns: readonly string[]): string {
  const cols = columns.map(quoteColumn).join(', ');
  return ['BEGIN TRANSACTION;', `DELETE FROM ${target} WHERE TRUE;`, `INSERT INTO ${target} (${cols}) SELECT ${cols} FROM ${source};`, 'COMMIT TRANSACTION;'].join('\n');
}

// ---------------------------------------------------------------------------
// Data test queries

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
        return row(i, 'COUNT(*)', 'NULL', 'NULL', `(SELECT ${cols} FROM ${table}${whereOf(test.where)} GROUP BY ${cols} HAVING COUNT(*) > 1)`);
      }
      case 'not_null':
        return row(i, `COUNTIF(${quoteColumn(test.column)} IS NULL)`, 'NULL', 'NULL', `${table}${whereOf(test.where)}`);
      case 'accepted_values': {
        const c = quoteColumn(test.column);
        params[`accepted_values_${i}`] = [...test.values];
        return row(i, `COUNTIF(${c} IS NOT NULL AND CAST(${c} AS STRING) NOT IN UNNEST(@accepted_values_${i}))`, 'NULL', 'NULL', `${table}${whereOf(test.where)}`);
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
        return result(false, -1, `no rows with ${test.column} at or before ${interval.end.toISOString()}; expected one within ${test.maxAgeMs / 60_000} minute(s)`);
      }
      const ageMs = interval.end.getTime() - latest;
      const minutes = Math.round(ageMs / 60_000);
      return result(ageMs <= test.maxAgeMs, minutes, `newest ${test.column} is ${minutes} minute(s) old at the interval end; expected at most ${test.maxAgeMs / 60_000}`);
    }
  }
}

// ---------------------------------------------------------------------------
// DAG task specs and the manifest the DAG files import

/** What the DAG needs to know about a model; `SqlModel` and the generated manifest both fit. */
export interface SqlModelNode {
  readonly name: string;
  readonly refs: readonly string[];
}

export interface SqlModelTaskSpec {
  id: string;
  run: { sqlModel: string };
  upstream: string[];
}

export interface DataTestTaskSpec {
  id: string;
  run: { activity: string; args: { model: string } };
  upstream: string[];
}

/**
 * One DAG task per model (task id = model name), upstream from ref(). Models without refs read
 * only sources, so they wait for `rootUpstream` (e.g. the task loading the raw data).
 */
export function sqlModelTasks(models: readonly SqlModelNode[], options: { rootUpstream?: readonly string[] } = {}): SqlModelTaskSpec[] {
  const names = new Set(models.map((m) => m.name));
  return models.map((m) => {
    const unknown = m.refs.filter((r) => !names.has(r));
    if (unknown.length > 0) throw new SqlModelError(`model ${m.name} refs ${unknown.join(', ')}, which ${unknown.length === 1 ? 'is' : 'are'} not among the models given`);
    return { id: m.name, run: { sqlModel: m.name }, upstream: m.refs.length > 0 ? [...m.refs] : [...(options.rootUpstream ?? [])] };
  });
}

export function dataTestTaskId(model: string): string {
  return `test_${model}`;
}

/** One task per model that has data tests: `test_<model>`, after the model. */
export function dataTestTasks(models: readonly (SqlModelNode & { readonly tests: readonly unknown[] })[]): DataTestTaskSpec[] {
  return models
    .filter((m) => m.tests.length > 0)
    .map((m) => ({ id: dataTestTaskId(m.name), run: { activity: DATA_TEST_ACTIVITY, args: { model: m.name } }, upstream: [m.name] }));
}

export interface SqlManifestModel {
  readonly name: string;
  readonly dataset: LogicalDataset;
  readonly table: string;
  readonly materialized: ModelConfig['materialized'];
  readonly refs: readonly string[];
  readonly sources: readonly string[];
  readonly tests: readonly { readonly name: string; readonly severity: 'error' | 'warn' }[];
}

export function sqlManifest(project: SqlProject): SqlManifestModel[] {
  return project.models.map((m) => ({
    name: m.name,
    ...modelTable(m),
    materialized: m.config.materialized,
    refs: [...m.refs],
    sources: m.sources.map((s) => `${s.dataset}.${s.table}`),
    tests: m.tests.map((t) => ({ name: t.name, severity: t.severity })),
  }));
}

/** Source of `sql/manifest.ts`: the graph as data, so workflow code (DAGs) knows it without reading files. */
export function renderSqlManifestModule(project: SqlProject): string {
  return [
    '/**',
    ' * GENERATED from the .sql and .tests.json files in this folder by `npx tsx sql/build-manifest.ts`;',
    ' * do not edit. test/unit/sql-models.test.ts fails when it is out of date. DAG definitions import',
    ' * it because workflow code cannot read files.',
    ' */',
    "import type { SqlManifestModel } from '../core/sql-models.js';",
    '',
    'export const SQL_MANIFEST: readonly SqlManifestModel[] = [',
    ...sqlManifest(project).map((m) =>
      [
        '  {',
        ...Object.entries(m).map(([key, value]) =>
          key === 'tests'
            ? `    tests: [\n${(value as SqlManifestModel['tests']).map((t) => `      ${JSON.stringify(t)},\n`).join('')}    ],`
            : `    ${key}: ${JSON.stringify(value)},`,
        ),
        '  },',
      ].join('\n'),
    ),
    '];',
    '',
  ].join('\n');
}
