/**
 * hourly_pipeline: one arrival hour of the lake through the warehouse.
 *
 *   load_raw -> stg_events -> fct_* -> customer_features -> test_<model> (each model) -> sync_profiles
 *
 * The SQL model tasks and their order come from the models' ref()s (sql/manifest.ts, generated
 * from sql/*.sql), never from a second hand-written list. The data interval is the arrival
 * hour [start, end), so the schedule fires on the hour: the interval must start on a whole hour.
 */
import { dataTestTasks, sqlModelTasks } from '../elt/dag-tasks.js';
import { SQL_MANIFEST } from '../elt/sql-manifest.js';
import { productionTaskDefaults } from './defaults.js';
import { defineDag, type DagTaskDefinition } from './dsl.js';
import { HOURLY_PIPELINE_DAG } from '../core/dag-ids.js';

/** activities/warehouse.ts */
export const LOAD_RAW_ACTIVITY = 'loadRawEvents';
/** Writes the features of the customers the run touched to their online profiles (another module). */
export const SYNC_PROFILES_ACTIVITY = 'syncProfiles';

/** Failures that another attempt cannot fix: bad data, unknown models, a changed schema. */
export const HOURLY_NON_RETRYABLE = [
  'DataTestFailed',
  'UnknownSqlModel',
  'SqlModelSchemaChanged',
  'InvalidDataInterval',
  'WarehouseSchemaMismatch',
] as const;

function tasks(): DagTaskDefinition[] {
  const models = sqlModelTasks(SQL_MANIFEST, { rootUpstream: ['load_raw'] });
  const tests = dataTestTasks(SQL_MANIFEST);
  const tested = new Set(tests.map((t) => t.run.args.model));
  // Profiles are synced once every model is built and has passed its tests.
  const syncAfter = [...tests.map((t) => t.id), ...models.filter((m) => !tested.has(m.id)).map((m) => m.id)];
  // The warehouse activities heartbeat while they run (activities/warehouse.ts): a task whose
  // worker died is retried after this, not after its whole startToCloseTimeout.
  const heartbeatTimeout = '1m' as const;
  return [
    { id: 'load_raw', run: { activity: LOAD_RAW_ACTIVITY }, startToCloseTimeout: '20m', heartbeatTimeout },
    ...models.map((m) => ({ ...m, heartbeatTimeout })),
    ...tests.map((t) => ({ ...t, startToCloseTimeout: '10m' as const, heartbeatTimeout })),
    { id: 'sync_profiles', run: { activity: SYNC_PROFILES_ACTIVITY }, upstream: syncAfter },
  ];
}

export const hourlyPipeline = defineDag({
  id: HOURLY_PIPELINE_DAG,
  description:
    'Load one arrival hour of the lake into raw.events, build staging, facts and customer_features, run the data tests, sync profiles.',
  schedule: { cron: '0 * * * *' },
  interval: 'hourly',
  defaultTaskOptions: productionTaskDefaults(HOURLY_NON_RETRYABLE),
  // The four fact models only depend on staging, so they run side by side.
  maxParallelism: 4,
  // Profiles and features are meant to be at most an hour and a half old.
  deadline: { after: '30m' },
  // A successful run has written the features of its hour; nightly_segmentation waits for the day's 24.
  produces: ['marts.customer_features'],
  tasks,
});
