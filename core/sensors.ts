/**
 * Sensors: DAG tasks that wait for a condition outside segflow (an object in GCS, a BigQuery
 * partition, a partition's row count). The conditions, their templating with the data interval,
 * their validation and how they are worded; shared by DAG definitions, the workflow that pokes
 * and the activity that checks, so it is pure.
 */
import type { DataInterval } from './dag-task.js';
import { parseDuration, type Duration } from './time.js';

/** The activity a sensor task runs once per poke. */
export const SENSOR_POKE_ACTIVITY = 'pokeSensor';
/** Error type of a sensor whose condition was still unmet at its timeout (never retried). */
export const SENSOR_TIMEOUT = 'SensorTimeout';

export type SensorCondition =
  /** An object by exact name; `bucket` defaults to the lake bucket. */
  | { readonly kind: 'gcs_object'; readonly bucket?: string; readonly object: string }
  /** At least one object whose name starts with `prefix`. */
  | { readonly kind: 'gcs_prefix'; readonly bucket?: string; readonly prefix: string }
  /**
   * A day (`YYYY-MM-DD`) or hour (`YYYY-MM-DDTHH`) partition of `dataset.table` on `column`, with at
   * least `minRows` rows (default 1: the partition exists). `dataset` may be a logical name
   * (`raw`, `staging`, `marts`), resolved through the configuration like the ELT's.
   */
  | {
      readonly kind: 'bigquery_partition';
      readonly dataset: string;
      readonly table: string;
      readonly column: string;
      readonly partition: string;
      readonly minRows?: number;
    };

export interface SensorSpec {
  readonly condition: SensorCondition;
  /** Wait between pokes (a workflow timer: no worker slot is held). */
  readonly pokeInterval: Duration | number;
  /** How long after the task's first start the condition may stay unmet before the task fails. */
  readonly timeout: Duration | number;
}

/** What the poke activity receives: the condition with its templates filled in. */
export interface SensorPokeInput {
  readonly dagId: string;
  readonly taskId: string;
  readonly interval: DataInterval;
  readonly condition: SensorCondition;
  readonly poke: number;
}

export interface SensorPokeResult {
  readonly met: boolean;
  /** What the poke saw, e.g. `no object gs://lake/x` or `12 rows (floor 100)`. */
  readonly observed: string;
}

/** A sensor task's progress, in the runDag query and the run's result. */
export interface SensorProgress {
  readonly condition: string;
  readonly pokes: number;
  readonly lastObserved?: string;
  /** When the next poke starts, while the sensor waits. */
  readonly nextPokeAt?: string;
  readonly timeoutAt: string;
}

/** The data interval names a sensor condition may use, Airflow's where Airflow has one. */
export function sensorTemplateValues(interval: DataInterval): Record<string, string> {
  const start = interval.start;
  return {
    ds: start.slice(0, 10),
    ds_nodash: start.slice(0, 10).replaceAll('-', ''),
    hour: start.slice(11, 13),
    data_interval_start: start,
    data_interval_end: interval.end,
  };
}

const PLACEHOLDER = /\{\{\s*([A-Za-z_]+)\s*\}\}/g;
const TEMPLATE_NAMES = Object.keys(sensorTemplateValues({ start: '2026-01-01T00:00:00Z', end: '2026-01-01T01:00:00Z' }));

function render(text: string, values: Record<string, string>): string {
  return text.replace(PLACEHOLDER, (whole, name: string) => values[name] ?? whole);
}

/** The condition with `{{ ds }}`, `{{ hour }}`, ... replaced by the run's data interval. */
export function renderSensorCondition(condition: SensorCondition, interval: DataInterval): SensorCondition {
  const v = sensorTemplateValues(interval);
  switch (condition.kind) {
    case 'gcs_object':
      return { ...condition, object: render(condition.object, v) };
    case 'gcs_prefix':
      return { ...condition, prefix: render(condition.prefix, v) };
    case 'bigquery_partition':
      return { ...condition, partition: render(condition.partition, v) };
  }
}

/** One line naming what a sensor waits for, for the query, logs and errors. */
export function describeSensorCondition(condition: SensorCondition): string {
  const bucket = (b: string | undefined) => b ?? '<lake bucket>';
  switch (condition.kind) {
    case 'gcs_object':
      return `GCS object gs://${bucket(condition.bucket)}/${condition.object}`;
    case 'gcs_prefix':
      return `a GCS object under gs://${bucket(condition.bucket)}/${condition.prefix}`;
    case 'bigquery_partition': {
      const floor = condition.minRows ?? 1;
      const where = `${condition.dataset}.${condition.table} partition ${condition.column}=${condition.partition}`;
      return floor === 1 ? `BigQuery ${where}` : `BigQuery ${where} with at least ${floor} rows`;
    }
  }
}

export const PARTITION_DAY = /^\d{4}-\d{2}-\d{2}$/;
export const PARTITION_HOUR = /^\d{4}-\d{2}-\d{2}T\d{2}$/;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Every problem of a sensor definition, worded for DagValidationError; empty when it is valid. */
export function sensorProblems(spec: SensorSpec): string[] {
  const problems: string[] = [];
  const durationMs = (d: Duration | number) => (typeof d === 'number' ? d : parseDuration(d));
  const poke = durationMs(spec.pokeInterval);
  const timeout = durationMs(spec.timeout);
  if (!(poke > 0))
    problems.push(`sensor.pokeInterval must be a positive duration like 30s or 5m, found ${JSON.stringify(spec.pokeInterval)}`);
  if (!(timeout > 0)) problems.push(`sensor.timeout must be a positive duration like 2h, found ${JSON.stringify(spec.timeout)}`);
  if (poke > 0 && timeout > 0 && poke > timeout) problems.push('sensor.pokeInterval must not be longer than sensor.timeout');
  const c = spec.condition;
  const templated: string[] = [];
  switch (c.kind) {
    case 'gcs_object':
      if (c.object.trim() === '') problems.push('sensor.condition.object must not be empty');
      templated.push(c.object);
      break;
    case 'gcs_prefix':
      if (c.prefix.trim() === '') problems.push('sensor.condition.prefix must not be empty');
      templated.push(c.prefix);
      break;
    case 'bigquery_partition': {
      for (const key of ['dataset', 'table', 'column'] as const) {
        if (!IDENTIFIER.test(c[key]))
          problems.push(`sensor.condition.${key} must be a BigQuery identifier, found ${JSON.stringify(c[key])}`);
      }
      if (c.minRows !== undefined && !(Number.isInteger(c.minRows) && c.minRows >= 1)) {
        problems.push(`sensor.condition.minRows must be an integer >= 1, found ${c.minRows}`);
      }
      const sample = render(c.partition, sensorTemplateValues({ start: '2026-01-01T00:00:00Z', end: '2026-01-01T01:00:00Z' }));
      if (!PARTITION_DAY.test(sample) && !PARTITION_HOUR.test(sample)) {
        problems.push(
          `sensor.condition.partition must render to YYYY-MM-DD or YYYY-MM-DDTHH (e.g. "{{ ds }}"), found ${JSON.stringify(c.partition)}`,
        );
      }
      templated.push(c.partition);
      break;
    }
    default:
      problems.push(
        `sensor.condition.kind must be gcs_object, gcs_prefix or bigquery_partition, found ${JSON.stringify((c as { kind: unknown }).kind)}`,
      );
  }
  for (const text of templated) {
    for (const [, name] of text.matchAll(PLACEHOLDER)) {
      if (!TEMPLATE_NAMES.includes(name as string)) {
        problems.push(`sensor.condition uses {{ ${name} }}; known names: ${TEMPLATE_NAMES.join(', ')}`);
      }
    }
  }
  return problems;
}

/** The error of a sensor that timed out: what it waited for, how long, and what it last saw. */
export function sensorTimeoutMessage(
  condition: SensorCondition,
  timeout: Duration | number,
  pokes: number,
  lastObserved: string | undefined,
): string {
  const timeoutText = typeof timeout === 'number' ? `${timeout}ms` : timeout;
  return (
    `sensor timed out after ${timeoutText} waiting for ${describeSensorCondition(condition)} ` +
    `(${pokes} poke${pokes === 1 ? '' : 's'}${lastObserved === undefined ? '' : `, last: ${lastObserved}`}); ` +
    'check the producer, then rerun the interval'
  );
}
