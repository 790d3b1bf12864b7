/**
 * Names of the ELT engine: logical datasets, identifier checks and qualified table names, and
 * the errors the engine throws. Values never enter SQL text: rendering only substitutes
 * fully-qualified table names, and everything that varies per run travels as `@named` query
 * parameters.
 */

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

export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,1023}$/;
export const MODEL_NAME = /^[a-z_][a-z0-9_]{0,127}$/;
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
