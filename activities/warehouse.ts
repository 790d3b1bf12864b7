/**
 * The warehouse (BigQuery) side of the ELT: datasets and raw.events, the hourly load of lake
 * objects into raw.events, SQL models (sql/*.sql) and their data tests.
 *
 * Every statement binds only the parameters it references (see runQuery) and never has a
 * value spliced into its text. Staging tables are named per call with a random suffix, expire
 * on their own after a day on BigQuery and are dropped when the call ends.
 */
import type { BigQuery, TableField } from '@google-cloud/bigquery';
import type { File, Storage } from '@google-cloud/storage';
import { ApplicationFailure } from '@temporalio/common';
import { randomUUID } from 'node:crypto';
import type { Config } from '../core/config.js';
import { hourPrefix, RAW_EVENTS_BQ_SCHEMA } from '../core/lake.js';
import type { Logger } from '../core/logger.js';
import { dataTestsQuery, evaluateDataTests, type DataTestOutcome } from '../elt/data-test-query.js';
import { createTableAsSql, deleteInsertSql, dropTableSql, mergeSql, replaceContentsSql } from '../elt/materialize.js';
import { qualifiedTable, quoteColumn, type WarehouseTarget } from '../elt/names.js';
import { loadSqlProject } from '../elt/load-project.js';
import { modelTable, renderModelSql, type SqlModel, type SqlProject } from '../elt/project.js';
import { referencedParams, stripSqlComments } from '../elt/sql-text.js';
import type { DataInterval, JsonValue } from '../core/dag-task.js';
import { MS_PER_UNIT, parseInstant } from '../core/time.js';
import { whileHeartbeating } from './heartbeat.js';

const STAGING_TABLE_TTL_HOURS = 24;

/** raw.events: the lake record, plus the lake partition it was loaded from and when. */
export const RAW_EVENTS_TABLE_SCHEMA: readonly TableField[] = [
  ...RAW_EVENTS_BQ_SCHEMA.map((f) => ({ ...f })),
  {
    name: '_arrival_hour',
    type: 'TIMESTAMP',
    mode: 'REQUIRED',
    description: 'Start of the lake partition (arrival hour) the row was loaded from',
  },
  { name: '_loaded_at', type: 'TIMESTAMP', mode: 'REQUIRED', description: 'When the load ran' },
];
const RAW_EVENTS_TABLE = 'events';
const LAKE_OBJECT_SUFFIX = '.ndjson.gz';

export interface WarehouseDeps {
  bigquery: BigQuery;
  storage: Storage;
  config: Config;
  logger: Logger;
  /** The models; read from `sql/` when absent. */
  project?: SqlProject;
}

export interface EnsureWarehouseResult {
  datasets: { raw: string; staging: string; marts: string };
  createdDatasets: string[];
  rawEventsTable: string;
  createdRawEvents: boolean;
  /** Nullable columns added to an existing raw.events because the schema in code gained them. */
  addedColumns: string[];
}

export interface LoadRawEventsInput {
  interval: DataInterval;
}

export interface LoadedHour {
  hour: string;
  objects: number;
  rows: number;
}

export interface LoadRawEventsResult {
  interval: DataInterval;
  objects: number;
  rows: number;
  hours: LoadedHour[];
}

export interface RunSqlModelInput {
  model: string;
  interval: DataInterval;
}

export interface SqlModelRunResult {
  model: string;
  table: string;
  materialized: 'table' | 'incremental';
  /** What happened to the target table. */
  action: 'created' | 'replaced' | 'rebuilt' | 'merged' | 'delete+insert';
  /** Rows the model's SELECT produced for the interval. */
  rows: number;
}

/** Direct callers pass `model`; DAG tasks (see dataTestTasks) pass it in `args.model`. */
export interface RunDataTestsInput {
  interval: DataInterval;
  model?: string;
  args?: JsonValue;
}

export interface DataTestsResult {
  model: string;
  interval: DataInterval;
  tests: DataTestOutcome[];
  /** `warn`-severity failures, one line each. */
  warnings: string[];
}

/** TIMESTAMP, STRING or ARRAY<STRING>: all the models and tests need (numbers would need explicit types on the emulator). */
type ParamValue = Date | string | string[];

export function createWarehouseActivities({ bigquery, storage, config, logger, project: givenProject }: WarehouseDeps) {
  const project = givenProject ?? loadSqlProject();
  const target: WarehouseTarget = { projectId: config.gcp.projectId, datasets: config.warehouse };
  const location = config.gcp.location;
  const rawEventsRef = qualifiedTable(target.projectId, config.warehouse.raw, RAW_EVENTS_TABLE);
  let ensured: Promise<EnsureWarehouseResult> | undefined;
  /**
   * Columns of model tables this worker built, so a model run reads one table's metadata
   * instead of two (each request costs the emulator time proportional to its job history).
   * An entry is dropped before the table is touched and set again only on success.
   */
  const knownTargets = new Map<string, TableField[]>();

  /** One statement (or script) as a query job, binding exactly the parameters it references. */
  async function runQuery(sql: string, values: Readonly<Record<string, ParamValue>> = {}): Promise<Record<string, unknown>[]> {
    const names = referencedParams(sql);
    const missing = names.filter((n) => !(n in values));
    if (missing.length > 0)
      throw new Error(`query uses @${missing.join(', @')} but no value was given for ${missing.length === 1 ? 'it' : 'them'}`);
    const params: Record<string, ParamValue> = {};
    const types: Record<string, string | string[]> = {};
    for (const name of names) {
      const value = values[name] as ParamValue;
      params[name] = value;
      types[name] = value instanceof Date ? 'TIMESTAMP' : Array.isArray(value) ? ['STRING'] : 'STRING';
    }
    const t0 = Date.now();
    const [rows] = await bigquery.query({
      query: stripSqlComments(sql),
      location,
      ...(names.length > 0 ? { params, types } : {}),
    });
    logger.debug({ ms: Date.now() - t0, statement: sql.trim().split('\n', 1)[0]?.slice(0, 120) }, 'query done');
    return rows as Record<string, unknown>[];
  }

  /** Columns and row count from table metadata, or undefined when the table does not exist. */
  async function tableInfo(dataset: string, table: string): Promise<{ columns: TableField[]; rows: number }>;
  async function tableInfo(dataset: string, table: string, ifExists: true): Promise<{ columns: TableField[]; rows: number } | undefined>;
  async function tableInfo(dataset: string, table: string, ifExists = false): Promise<{ columns: TableField[]; rows: number } | undefined> {
    try {
      const [metadata] = await bigquery.dataset(dataset).table(table).getMetadata();
      const m = metadata as { schema?: { fields?: TableField[] }; numRows?: string | number };
      return { columns: (m.schema?.fields ?? []).map((f) => ({ ...f })), rows: Number(m.numRows ?? 0) };
    } catch (err) {
      if (ifExists && (err as { code?: number }).code === 404) return undefined;
      throw err;
    }
  }

  async function dropQuietly(dataset: string, table: string, log: Logger): Promise<void> {
    try {
      await bigquery.dataset(dataset).table(table).delete({ ignoreNotFound: true });
    } catch (err) {
      // The table expires on its own (real BigQuery); a failed cleanup must not fail the task.
      log.warn({ err, table: `${dataset}.${table}` }, 'could not drop a staging table; it expires on its own');
    }
  }

  async function ensureWarehouse(): Promise<EnsureWarehouseResult> {
    const log = logger.child({ activity: 'ensureWarehouse' });
    const createdDatasets: string[] = [];
    for (const name of [config.warehouse.raw, config.warehouse.staging, config.warehouse.marts]) {
      const dataset = bigquery.dataset(name, { location });
      const [exists] = await dataset.exists();
      if (exists) continue;
      try {
        await dataset.create({ location });
        createdDatasets.push(name);
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
    }
    const table = bigquery.dataset(config.warehouse.raw).table(RAW_EVENTS_TABLE);
    const [exists] = await table.exists();
    let createdRawEvents = false;
    const addedColumns: string[] = [];
    if (!exists) {
      try {
        await table.create({
          schema: { fields: RAW_EVENTS_TABLE_SCHEMA.map((f) => ({ ...f })) },
          // Partitioned by event date (DATE(ts)), clustered by customer: what the models filter on.
          timePartitioning: { type: 'DAY', field: 'ts' },
          clustering: { fields: ['customer_id'] },
          description: 'Lake events (gs://<lake>/raw/events/v1/), one row per delivery; loaded per arrival hour by loadRawEvents.',
        });
        createdRawEvents = true;
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
    } else {
      const current = (await tableInfo(config.warehouse.raw, RAW_EVENTS_TABLE)).columns;
      const have = new Set(current.map((f) => f.name));
      const missing = RAW_EVENTS_TABLE_SCHEMA.filter((f) => !have.has(f.name));
      const required = missing.filter((f) => f.mode === 'REQUIRED');
      if (required.length > 0) {
        throw ApplicationFailure.nonRetryable(
          `${config.warehouse.raw}.${RAW_EVENTS_TABLE} lacks the REQUIRED column(s) ${required.map((f) => f.name).join(', ')}; ` +
            'BigQuery can only add NULLABLE columns. Make the new field nullable in RAW_EVENTS_BQ_SCHEMA, or migrate the table.',
          'WarehouseSchemaMismatch',
        );
      }
      if (missing.length > 0) {
        // Schema evolution of the lake record: new fields are nullable, so old rows stay valid.
        await table.setMetadata({ schema: { fields: [...current, ...missing.map((f) => ({ ...f }))] } });
        try {
          await runQuery(`SELECT ${missing.map((f) => quoteColumn(f.name as string)).join(', ')} FROM ${rawEventsRef} LIMIT 0`);
        } catch (err) {
          // The BigQuery emulator records added columns in the metadata but not in its storage.
          throw ApplicationFailure.nonRetryable(
            `Added ${missing.map((f) => f.name).join(', ')} to ${config.warehouse.raw}.${RAW_EVENTS_TABLE}, but queries cannot see them ` +
              `(${err instanceof Error ? err.message : String(err)}). On the local emulator, drop the dataset ${config.warehouse.raw} and reload the lake hours.`,
            'WarehouseSchemaMismatch',
          );
        }
        addedColumns.push(...missing.map((f) => f.name as string));
        log.info({ addedColumns }, 'added nullable columns to raw.events');
      }
    }
    log.info({ createdDatasets, createdRawEvents }, 'warehouse ready');
    return {
      datasets: { ...config.warehouse },
      createdDatasets,
      rawEventsTable: `${config.warehouse.raw}.${RAW_EVENTS_TABLE}`,
      createdRawEvents,
      addedColumns,
    };
  }

  function ensureOnce(): Promise<EnsureWarehouseResult> {
    ensured ??= ensureWarehouse().catch((err: unknown) => {
      ensured = undefined;
      throw err;
    });
    return ensured;
  }

  /**
   * One arrival hour: load its lake objects into a fresh staging table (explicit schema;
   * unknown fields ignored, missing nullable fields NULL), then in one transaction delete the
   * hour's rows from raw.events and insert the staged ones. Rerunning the hour replaces the
   * same rows, whatever happened before: idempotency rests on `_arrival_hour`, not on job ids.
   */
  async function loadHour(hourStart: Date, log: Logger): Promise<LoadedHour> {
    const prefix = hourPrefix(hourStart);
    const [files] = await storage.bucket(config.lake.bucket).getFiles({ prefix, autoPaginate: true });
    const objects = files.filter((f: File) => f.name.endsWith(LAKE_OBJECT_SUFFIX));
    const hour = hourStart.toISOString();
    const columns = RAW_EVENTS_BQ_SCHEMA.map((f) => quoteColumn(f.name)).join(', ');
    if (objects.length === 0) {
      await runQuery(`DELETE FROM ${rawEventsRef} WHERE _arrival_hour = @arrival_hour`, { arrival_hour: hourStart });
      log.info({ hour, prefix }, 'no lake objects for the hour');
      return { hour, objects: 0, rows: 0 };
    }
    const loadTableId = `_load_events_${compactInstant(hourStart)}_${randomUUID().slice(0, 8)}`;
    const loadTable = bigquery.dataset(config.warehouse.raw).table(loadTableId);
    try {
      await loadTable.create({
        schema: { fields: RAW_EVENTS_BQ_SCHEMA.map((f) => ({ ...f })) },
        expirationTime: String(Date.now() + STAGING_TABLE_TTL_HOURS * MS_PER_UNIT.h),
      });
      const [job] = await loadTable.load(objects, {
        sourceFormat: 'NEWLINE_DELIMITED_JSON',
        writeDisposition: 'WRITE_TRUNCATE',
        schema: { fields: RAW_EVENTS_BQ_SCHEMA.map((f) => ({ ...f })) },
        // A lake writer newer than this loader may add (nullable) fields: load what we know,
        // the object keeps the rest until RAW_EVENTS_BQ_SCHEMA learns it and the hour is reloaded.
        ignoreUnknownValues: true,
        maxBadRecords: 0,
      });
      const errors = job.status?.errors ?? [];
      if (errors.length > 0) throw new Error(`load job for ${prefix} failed: ${JSON.stringify(errors)}`);
      const loadRef = qualifiedTable(target.projectId, config.warehouse.raw, loadTableId);
      const { rows } = await tableInfo(config.warehouse.raw, loadTableId);
      await runQuery(
        [
          'BEGIN TRANSACTION;',
          `DELETE FROM ${rawEventsRef} WHERE _arrival_hour = @arrival_hour;`,
          `INSERT INTO ${rawEventsRef} (${columns}, _arrival_hour, _loaded_at)`,
          `SELECT ${columns}, @arrival_hour, CURRENT_TIMESTAMP() FROM ${loadRef};`,
          'COMMIT TRANSACTION;',
        ].join('\n'),
        { arrival_hour: hourStart },
      );
      log.info({ hour, objects: objects.length, rows }, 'loaded arrival hour');
      return { hour, objects: objects.length, rows };
    } finally {
      await dropQuietly(config.warehouse.raw, loadTableId, log);
    }
  }

  async function loadRawEvents({ interval }: LoadRawEventsInput): Promise<LoadRawEventsResult> {
    const { start, end } = parseInterval(interval);
    if (start.getTime() % MS_PER_UNIT.h !== 0 || end.getTime() % MS_PER_UNIT.h !== 0) {
      throw ApplicationFailure.nonRetryable(
        `loadRawEvents: expected a data interval on whole UTC hours (the lake is partitioned by arrival hour), found ${interval.start}..${interval.end}`,
        'InvalidDataInterval',
      );
    }
    const log = logger.child({ activity: 'loadRawEvents', interval });
    await ensureOnce();
    const hours: LoadedHour[] = [];
    for (let t = start.getTime(); t < end.getTime(); t += MS_PER_UNIT.h) hours.push(await loadHour(new Date(t), log));
    return {
      interval,
      objects: hours.reduce((n, h) => n + h.objects, 0),
      rows: hours.reduce((n, h) => n + h.rows, 0),
      hours,
    };
  }

  function modelOrFail(name: string | undefined): SqlModel {
    const model = name === undefined ? undefined : project.byName.get(name);
    if (model === undefined) {
      throw ApplicationFailure.nonRetryable(
        `Unknown SQL model ${JSON.stringify(name)}; known models: ${[...project.byName.keys()].join(', ')}. Add sql/<model>.sql or fix the name.`,
        'UnknownSqlModel',
      );
    }
    return model;
  }

  /**
   * Runs one model for an interval: its SELECT goes into a staging table first (the only
   * statement with parameters), then the target is created, replaced, merged or
   * delete+inserted from it. Going through a table is what lets MERGE work on the emulator
   * (its MERGE takes only a table as source) and keeps CREATE OR REPLACE out (the emulator
   * refuses to replace an existing table).
   */
  async function runSqlModel(input: RunSqlModelInput): Promise<SqlModelRunResult> {
    const model = modelOrFail(input.model);
    const { start, end } = parseInterval(input.interval);
    const log = logger.child({ activity: 'runSqlModel', model: model.name, interval: input.interval });
    const { dataset: logical, table } = modelTable(model);
    const dataset = config.warehouse[logical];
    const targetRef = qualifiedTable(target.projectId, dataset, table);
    const stageId = `_tmp_${model.name}_${compactInstant(start)}_${randomUUID().slice(0, 8)}`;
    const stageRef = qualifiedTable(target.projectId, dataset, stageId);
    const select = renderModelSql(project, model.name, target);
    const { config: mc } = model;
    const t0 = Date.now();
    try {
      await runQuery(createTableAsSql(stageRef, select, { expiresInHours: STAGING_TABLE_TTL_HOURS }), {
        interval_start: start,
        interval_end: end,
      });
      const known = knownTargets.get(targetRef);
      const [stage, existing] = await Promise.all([
        tableInfo(dataset, stageId),
        known === undefined ? tableInfo(dataset, table, true) : { columns: known, rows: Number.NaN },
      ]);
      const rows = stage.rows;
      const stageColumns = stage.columns;
      const names = stageColumns.map((f) => f.name as string);
      const createTarget = () =>
        runQuery(createTableAsSql(targetRef, `SELECT * FROM ${stageRef}`, { partitionBy: mc.partition_by, clusterBy: mc.cluster_by }));

      let action: SqlModelRunResult['action'];
      // Forgotten first: if anything below fails, the next run reads the target's metadata again.
      knownTargets.delete(targetRef);
      if (existing === undefined) {
        await createTarget();
        action = 'created';
      } else {
        const change = schemaChange(existing.columns, stageColumns);
        if (mc.materialized === 'table') {
          if (change === undefined) {
            await runQuery(replaceContentsSql(targetRef, stageRef, names));
            action = 'replaced';
          } else {
            // New columns: the one case the contents cannot be swapped in a transaction.
            log.info({ change }, 'model columns changed; rebuilding the table');
            await runQuery(dropTableSql(targetRef));
            await createTarget();
            action = 'rebuilt';
          }
        } else {
          if (change !== undefined) {
            throw ApplicationFailure.nonRetryable(
              `Incremental model ${model.name} now produces different columns than ${dataset}.${table} (${change}). ` +
                'Migrate the table (ALTER TABLE ... ADD COLUMN), or drop it and backfill the model.',
              'SqlModelSchemaChanged',
            );
          }
          const key = mc.unique_key as string[];
          if (mc.strategy === 'merge') {
            await runQuery(mergeSql(targetRef, stageRef, names, key, mc.merge_update_if));
            action = 'merged';
          } else {
            await runQuery(deleteInsertSql(targetRef, stageRef, names, key));
            action = 'delete+insert';
          }
        }
      }
      knownTargets.set(targetRef, stageColumns);
      log.info({ action, rows, ms: Date.now() - t0 }, 'model built');
      return { model: model.name, table: `${dataset}.${table}`, materialized: mc.materialized, action, rows };
    } finally {
      await dropQuietly(dataset, stageId, log);
    }
  }

  /**
   * Runs a model's data tests for an interval. Failing `error` tests fail the task with a
   * non-retryable ApplicationFailure (type DataTestFailed) naming each test and its count;
   * failing `warn` tests are logged and returned as warnings.
   */
  async function runDataTests(input: RunDataTestsInput): Promise<DataTestsResult> {
    const fromArgs = modelFromArgs(input.args);
    const model = modelOrFail(input.model ?? fromArgs);
    const interval = parseInterval(input.interval);
    const log = logger.child({ activity: 'runDataTests', model: model.name, interval: input.interval });
    const { dataset: logical, table } = modelTable(model);
    const tableRef = qualifiedTable(target.projectId, config.warehouse[logical], table);
    let outcomes: DataTestOutcome[] = [];
    if (model.tests.length > 0) {
      const query = dataTestsQuery(model.tests, tableRef, interval);
      outcomes = evaluateDataTests(model.tests, await runQuery(query.sql, query.params), interval);
    }
    const failed = outcomes.filter((o) => !o.passed);
    const warnings = failed.filter((o) => o.severity === 'warn').map((o) => `${model.name}.${o.name}: ${o.message}`);
    for (const w of warnings) log.warn({ warning: w }, 'data test warning');
    const errors = failed.filter((o) => o.severity === 'error');
    if (errors.length > 0) {
      const message =
        `${errors.length} data test(s) of model ${model.name} failed for ${input.interval.start}..${input.interval.end}: ` +
        errors.map((o) => `${o.name} (${o.failures}): ${o.message}`).join('; ');
      log.error({ failed: errors.map((o) => o.name) }, 'data tests failed');
      throw ApplicationFailure.create({
        type: 'DataTestFailed',
        message,
        nonRetryable: true,
        details: [{ model: model.name, interval: input.interval, failures: errors }],
      });
    }
    log.info({ tests: outcomes.length, warnings: warnings.length }, 'data tests passed');
    return { model: model.name, interval: input.interval, tests: outcomes, warnings };
  }

  return {
    ensureWarehouse,
    loadRawEvents: (input: LoadRawEventsInput) => whileHeartbeating(() => loadRawEvents(input)),
    runSqlModel: (input: RunSqlModelInput) => whileHeartbeating(() => runSqlModel(input)),
    runDataTests: (input: RunDataTestsInput) => whileHeartbeating(() => runDataTests(input)),
  };
}

export type WarehouseActivities = ReturnType<typeof createWarehouseActivities>;

function modelFromArgs(args: JsonValue | undefined): string | undefined {
  if (args === null || typeof args !== 'object' || Array.isArray(args)) return undefined;
  const model = (args as { readonly [key: string]: JsonValue }).model;
  return typeof model === 'string' ? model : undefined;
}

function parseInterval(interval: DataInterval): { start: Date; end: Date } {
  const start = new Date(parseInstant(interval?.start));
  const end = new Date(parseInstant(interval?.end));
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || start >= end) {
    throw ApplicationFailure.nonRetryable(
      `Expected a data interval { start, end } of RFC 3339 instants with start < end, found ${JSON.stringify(interval)}`,
      'InvalidDataInterval',
    );
  }
  return { start, end };
}

/** `20261126T0900`: a table-name-safe instant. */
function compactInstant(instant: Date): string {
  return instant.toISOString().slice(0, 16).replace(/[-:]/g, '');
}

/** Describes how the columns differ (names and types), or undefined when they match. */
function schemaChange(existing: readonly TableField[], next: readonly TableField[]): string | undefined {
  const typeOf = (f: TableField) => normalizeType(String(f.type));
  const have = new Map(existing.map((f) => [f.name, typeOf(f)]));
  const want = new Map(next.map((f) => [f.name, typeOf(f)]));
  const added = [...want.keys()].filter((n) => !have.has(n));
  const removed = [...have.keys()].filter((n) => !want.has(n));
  const retyped = [...want.entries()].filter(([n, t]) => have.has(n) && have.get(n) !== t).map(([n, t]) => `${n}: ${have.get(n)} -> ${t}`);
  const parts = [
    added.length > 0 ? `added ${added.join(', ')}` : '',
    removed.length > 0 ? `removed ${removed.join(', ')}` : '',
    retyped.length > 0 ? `retyped ${retyped.join(', ')}` : '',
  ].filter((p) => p !== '');
  return parts.length === 0 ? undefined : parts.join('; ');
}

function normalizeType(type: string): string {
  const upper = type.toUpperCase();
  const aliases: Record<string, string> = {
    INTEGER: 'INT64',
    FLOAT: 'FLOAT64',
    BOOLEAN: 'BOOL',
    DECIMAL: 'NUMERIC',
    BIGDECIMAL: 'BIGNUMERIC',
  };
  return aliases[upper] ?? upper;
}

function isAlreadyExists(err: unknown): boolean {
  const e = err as { code?: number; message?: string } | undefined;
  return e?.code === 409 || /already exists|already created|duplicate/i.test(e?.message ?? '');
}
