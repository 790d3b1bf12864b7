/**
 * Materialization statements. Every table name passed in is already qualified (qualifiedTable);
 * column names come from table metadata and are checked again by quoteColumn.
 */
import { SqlModelError, quoteColumn } from './names.js';

/** Staging tables of a run expire on their own if the run dies before dropping them. */
export function createTableAsSql(
  table: string,
  select: string,
  options: { partitionBy?: string | undefined; clusterBy?: readonly string[] | undefined; expiresInHours?: number | undefined } = {},
): string {
  const lines = [`CREATE TABLE ${table}`];
  if (options.partitionBy !== undefined) lines.push(`PARTITION BY ${options.partitionBy}`);
  if (options.clusterBy !== undefined && options.clusterBy.length > 0)
    lines.push(`CLUSTER BY ${options.clusterBy.map(quoteColumn).join(', ')}`);
  if (options.expiresInHours !== undefined) {
    if (!Number.isInteger(options.expiresInHours) || options.expiresInHours <= 0)
      throw new SqlModelError('expiresInHours: expected a positive whole number');
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
export function mergeSql(
  target: string,
  source: string,
  columns: readonly string[],
  uniqueKey: readonly string[],
  updateIf?: string,
): string {
  const cols = columns.map(quoteColumn);
  const on = uniqueKey.map((k) => `T.${quoteColumn(k)} = S.${quoteColumn(k)}`).join(' AND ');
  const updates = columns.filter((c) => !uniqueKey.includes(c)).map((c) => `${quoteColumn(c)} = S.${quoteColumn(c)}`);
  return [
    `MERGE ${target} AS T`,
    `USING ${source} AS S`,
    `ON ${on}`,
    ...(updates.length > 0
      ? [`WHEN MATCHED${updateIf === undefined ? '' : ` AND (${updateIf})`} THEN UPDATE SET ${updates.join(', ')}`]
      : []),
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
  return [
    'BEGIN TRANSACTION;',
    `DELETE FROM ${target} WHERE TRUE;`,
    `INSERT INTO ${target} (${cols}) SELECT ${cols} FROM ${source};`,
    'COMMIT TRANSACTION;',
  ].join('\n');
}
