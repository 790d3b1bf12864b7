import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { loadSqlProject, SQL_MANIFEST_FILE } from '../../elt/load-project.js';
import { topologicalOrder } from '../../core/dag-graph.js';
import { dataTestTasks, sqlModelTasks } from '../../elt/dag-tasks.js';
import { dataTestsQuery, evaluateDataTests } from '../../elt/data-test-query.js';
import { parseDataTests } from '../../elt/data-tests.js';
import { renderSqlManifestModule } from '../../elt/manifest.js';
import { createTableAsSql, deleteInsertSql, mergeSql } from '../../elt/materialize.js';
import { parseModelConfig } from '../../elt/model-config.js';
import { qualifiedTable, SqlModelError, SqlProjectError, type WarehouseTarget } from '../../elt/names.js';
import { buildSqlProject, parseSqlModel, renderModelSql } from '../../elt/project.js';
import { referencedParams, stripSqlComments } from '../../elt/sql-text.js';
import { HOURLY_PIPELINE_DAG } from '../../core/dag-ids.js';
import { hourlyPipeline } from '../../dags/hourly-pipeline.js';

const HEADER_T = '-- config: materialized=table, dataset=marts\n';
const HEADER_I = '-- config: materialized=incremental, strategy=merge, unique_key=id, dataset=staging\n';

function model(name: string, body: string, header = HEADER_T, tests?: string) {
  return parseSqlModel({ name, sql: `${header}${body}`, ...(tests === undefined ? {} : { tests }) });
}

const target: WarehouseTarget = { projectId: 'segflow-local', datasets: { raw: 'raw_x', staging: 'staging_x', marts: 'marts_x' } };

describe('ref() and source() parsing', () => {
  test('finds refs (deduplicated, first-use order) and sources', () => {
    const m = model(
      'features',
      "SELECT * FROM {{ ref('orders') }} o JOIN {{ref(\"sessions\")}} s USING (id) JOIN {{ ref('orders') }} USING (id), {{ source('raw', 'events') }}",
    );
    assert.deepEqual(m.refs, ['orders', 'sessions']);
    assert.deepEqual(m.sources, [{ dataset: 'raw', table: 'events' }]);
  });

  test('refuses other template syntax, naming the model and the tag', () => {
    assert.throws(
      () => model('m', "SELECT {{ var('x') }}"),
      (e: unknown) => e instanceof SqlModelError && /model m: unsupported template tag \{\{ var\('x'\) \}\}/.test(e.message),
    );
    assert.throws(() => model('m', '{% for x in y %}SELECT 1{% endfor %}'), /model m: unsupported template syntax "\{%"/);
    assert.throws(() => model('m', "SELECT * FROM {{ ref('Bad-Name') }}"), /expected ref\('model_name'\)/);
    assert.throws(() => model('m', "SELECT * FROM {{ source('lake', 'events') }}"), /expected source\('<raw\|staging\|marts>'/);
  });

  test('reads the config header and validates it', () => {
    const c = parseModelConfig(
      'm',
      [
        '-- config: materialized=incremental, strategy=merge, unique_key=customer_id, dataset=marts',
        '-- config: partition_by=TIMESTAMP_TRUNC(ts, DAY), cluster_by=customer_id type',
        '-- config: merge_update_if=S.received_at > T.received_at',
        'SELECT 1',
      ].join('\n'),
    );
    assert.deepEqual(c, {
      materialized: 'incremental',
      strategy: 'merge',
      unique_key: ['customer_id'],
      dataset: 'marts',
      partition_by: 'TIMESTAMP_TRUNC(ts, DAY)',
      cluster_by: ['customer_id', 'type'],
      merge_update_if: 'S.received_at > T.received_at',
    });
    assert.throws(
      () => parseModelConfig('m', '-- config: materialized=incremental, dataset=marts\nSELECT 1'),
      /model m: invalid config header \(.*unique_key/,
    );
    assert.throws(
      () => parseModelConfig('m', '-- config: materialized=view, dataset=marts\nSELECT 1'),
      /materialized=table or materialized=incremental/,
    );
    assert.throws(
      () => parseModelConfig('m', '-- config: materialized=table, dataset=marts, colour=red\nSELECT 1'),
      /invalid config header/,
    );
    assert.throws(
      () => parseModelConfig('m', 'SELECT 1\n-- config: materialized=table, dataset=marts'),
      /model m, line 2: "-- config:" lines belong in the leading comment block/,
    );
    assert.throws(
      () => parseModelConfig('m', '-- config: materialized=table, dataset=marts, dataset=raw\nSELECT 1'),
      /config key dataset is set twice/,
    );
  });
});

describe('the model graph', () => {
  const a = model('a', "SELECT * FROM {{ source('raw', 'events') }}", HEADER_I);
  const b = model('b', "SELECT * FROM {{ ref('a') }}");
  const c = model('c', "SELECT * FROM {{ ref('b') }} JOIN {{ ref('a') }} USING (id)");

  test('orders models after everything they ref', () => {
    const project = buildSqlProject([c, b, a]);
    assert.deepEqual(
      project.models.map((m) => m.name),
      ['a', 'b', 'c'],
    );
  });

  test('an unknown ref is refused, naming the model and the ref', () => {
    const bad = model('d', "SELECT * FROM {{ ref('missing') }}");
    assert.throws(
      () => buildSqlProject([a, bad]),
      (e: unknown) => e instanceof SqlProjectError && e.problems.some((p) => p.includes('model d refs unknown model "missing"')),
    );
  });

  test('a cycle is refused, naming its path', () => {
    const x = model('x', "SELECT * FROM {{ ref('y') }}");
    const y = model('y', "SELECT * FROM {{ ref('z') }}");
    const z = model('z', "SELECT * FROM {{ ref('x') }}");
    assert.throws(
      () => buildSqlProject([x, y, z]),
      (e: unknown) =>
        e instanceof SqlProjectError &&
        /models ref each other in a cycle: (x refs y refs z refs x|y refs z refs x refs y|z refs x refs y refs z);/.test(e.message),
    );
    const self = model('s', "SELECT * FROM {{ ref('s') }}");
    assert.throws(() => buildSqlProject([self]), /model s refs itself/);
  });

  test('two models building one table, or a source that a model builds, are refused', () => {
    const twin = model('twin', 'SELECT 1', '-- config: materialized=table, dataset=marts, alias=b\n');
    assert.throws(() => buildSqlProject([a, b, twin]), /models b and twin both build marts\.b|models twin and b both build marts\.b/);
    const readsBuilt = model('r', "SELECT * FROM {{ source('marts', 'b') }}");
    assert.throws(() => buildSqlProject([a, b, readsBuilt]), /reads source\('marts', 'b'\), which model b builds; use ref\('b'\)/);
  });

  test('DAG tasks: one per model, upstream from ref(); test tasks after their model', () => {
    const project = buildSqlProject([a, b, c]);
    assert.deepEqual(sqlModelTasks(project.models, { rootUpstream: ['load_raw'] }), [
      { id: 'a', run: { sqlModel: 'a' }, upstream: ['load_raw'] },
      { id: 'b', run: { sqlModel: 'b' }, upstream: ['a'] },
      { id: 'c', run: { sqlModel: 'c' }, upstream: ['b', 'a'] },
    ]);
    const tested = model('t', 'SELECT 1 AS id', HEADER_T, '{"tests":[{"type":"unique","columns":["id"]}]}');
    assert.deepEqual(dataTestTasks([a, tested]), [
      { id: 'test_t', run: { activity: 'runDataTests', args: { model: 't' } }, upstream: ['t'] },
    ]);
    assert.throws(() => sqlModelTasks([b]), /model b refs a, which is not among the models given/);
  });
});

describe('rendering', () => {
  const events = model(
    'stg',
    "SELECT * FROM {{ source('raw', 'events') }} WHERE _arrival_hour >= @interval_start AND _arrival_hour < @interval_end",
    HEADER_I.replace('dataset=staging', 'dataset=staging, alias=events'),
  );
  const facts = model('fct', "SELECT id FROM {{ ref('stg') }} WHERE ts < @interval_end");
  const project = buildSqlProject([events, facts]);

  test('replaces ref() and source() with fully-qualified names and nothing else', () => {
    assert.equal(
      renderModelSql(project, 'stg', target),
      `${HEADER_I.replace('dataset=staging', 'dataset=staging, alias=events')}SELECT * FROM \`segflow-local.raw_x.events\` WHERE _arrival_hour >= @interval_start AND _arrival_hour < @interval_end`,
    );
    assert.equal(
      renderModelSql(project, 'fct', target),
      `${HEADER_T}SELECT id FROM \`segflow-local.staging_x.events\` WHERE ts < @interval_end`,
    );
  });

  test('never splices values: the interval stays a parameter, test values travel as parameters', () => {
    const sql = renderModelSql(project, 'stg', target);
    assert.deepEqual(referencedParams(sql), ['interval_start', 'interval_end']);
    assert.doesNotMatch(sql, /\d{4}-\d{2}-\d{2}/);

    const hostile = "x'); DROP TABLE raw.events; --";
    const tests = parseDataTests(
      'stg',
      JSON.stringify({
        tests: [
          { type: 'accepted_values', column: 'type', values: ['a', hostile] },
          { type: 'row_count_drop', timestamp_column: 'ts', lookback_intervals: 24, max_drop: 0.5 },
        ],
      }),
    );
    const interval = { start: new Date('2026-03-10T09:00:00Z'), end: new Date('2026-03-10T10:00:00Z') };
    const query = dataTestsQuery(tests, '`segflow-local.staging_x.events`', interval);
    assert.ok(!query.sql.includes(hostile) && !query.sql.includes('DROP') && !query.sql.includes('2026'), query.sql);
    assert.deepEqual(referencedParams(query.sql).sort(), ['accepted_values_0', 'baseline_start_1', 'interval_end', 'interval_start']);
    assert.deepEqual(query.params.accepted_values_0, ['a', hostile]);
    assert.deepEqual(query.params.baseline_start_1, new Date('2026-03-09T09:00:00Z'));
  });

  test('names are checked before they reach SQL', () => {
    assert.equal(qualifiedTable('segflow-local', 'raw', 'events'), '`segflow-local.raw.events`');
    assert.throws(() => qualifiedTable('segflow-local', 'raw', 'events`; DROP TABLE x; --'), /table: expected a BigQuery identifier/);
    assert.throws(() => qualifiedTable('Bad Project', 'raw', 'events'), /project id/);
    assert.throws(() => mergeSql('`p.d.t`', '`p.d.s`', ['id', 'a b'], ['id']), /column: expected a BigQuery identifier/);
  });

  test('materialization statements', () => {
    assert.equal(
      mergeSql('`p.d.t`', '`p.d.s`', ['id', 'v'], ['id'], 'S.v > T.v'),
      [
        'MERGE `p.d.t` AS T',
        'USING `p.d.s` AS S',
        'ON T.`id` = S.`id`',
        'WHEN MATCHED AND (S.v > T.v) THEN UPDATE SET `v` = S.`v`',
        'WHEN NOT MATCHED THEN INSERT (`id`, `v`) VALUES (S.`id`, S.`v`)',
      ].join('\n'),
    );
    assert.match(
      deleteInsertSql('`p.d.t`', '`p.d.s`', ['customer_id', 'v'], ['customer_id']),
      /^BEGIN TRANSACTION;\nDELETE FROM `p\.d\.t` WHERE `customer_id` IN \(SELECT DISTINCT `customer_id` FROM `p\.d\.s`\);\nINSERT INTO/,
    );
    assert.equal(
      createTableAsSql('`p.d.t`', 'SELECT 1', { partitionBy: 'DATE(ts)', clusterBy: ['customer_id'] }),
      'CREATE TABLE `p.d.t`\nPARTITION BY DATE(ts)\nCLUSTER BY `customer_id`\nAS\nSELECT 1',
    );
  });

  test('parameters and comments are found outside strings only', () => {
    const sql =
      'SELECT \'@not_a_param -- no\', "#nor", `@col` -- @comment_param )\nFROM t /* @block ( */ WHERE a = @real AND b = @@dataset_id # @hash\n';
    assert.deepEqual(referencedParams(sql), ['real']);
    assert.equal(stripSqlComments(sql), 'SELECT \'@not_a_param -- no\', "#nor", `@col` \nFROM t  WHERE a = @real AND b = @@dataset_id \n');
  });
});

describe('data tests', () => {
  const interval = { start: new Date('2026-03-10T09:00:00Z'), end: new Date('2026-03-10T10:00:00Z') };

  test('parse, name and expand', () => {
    const tests = parseDataTests(
      'm',
      JSON.stringify({
        tests: [
          { type: 'unique', columns: ['a', 'b'] },
          { type: 'not_null', columns: ['a', 'b'], severity: 'warn' },
          { type: 'freshness', column: 'ts', max_age: '2h' },
          { type: 'expression', name: 'positive', expression: 'a > 0' },
        ],
      }),
    );
    assert.deepEqual(
      tests.map((t) => [t.name, t.severity]),
      [
        ['unique_a_b', 'error'],
        ['not_null_a', 'warn'],
        ['not_null_b', 'warn'],
        ['freshness_ts', 'error'],
        ['positive', 'error'],
      ],
    );
    assert.throws(() => parseDataTests('m', '{"tests":[{"type":"unique","columns":[]}]}'), /tests of model m: tests\.0\.columns/);
    assert.throws(
      () => parseDataTests('m', '{"tests":[{"type":"unique","columns":["a"]},{"type":"unique","columns":["a"]}]}'),
      /two tests are named unique_a/,
    );
  });

  test('row-count drop against the trailing average, and freshness', () => {
    const tests = parseDataTests(
      'm',
      JSON.stringify({
        tests: [
          { type: 'row_count_drop', timestamp_column: 'ts', lookback_intervals: 4, max_drop: 0.5, min_baseline: 10 },
          { type: 'row_count_drop', name: 'quiet', timestamp_column: 'ts', lookback_intervals: 4, max_drop: 0.5, min_baseline: 10 },
          { type: 'freshness', column: 'ts', max_age: '90m' },
          { type: 'freshness', name: 'stale', column: 'ts', max_age: '90m' },
          { type: 'freshness', name: 'empty', column: 'ts', max_age: '90m' },
        ],
      }),
    );
    const rows = [
      { test: 0, a: 19, b: 160, latest: null }, // average 40, floor 20: 19 fails
      { test: 1, a: 0, b: 36, latest: null }, // average 9 < min_baseline 10: too quiet to judge
      { test: 2, a: null, b: null, latest: { value: '2026-03-10T08:31:00Z' } }, // 89 minutes
      { test: 3, a: null, b: null, latest: { value: '2026-03-10T08:29:00Z' } }, // 91 minutes
      { test: 4, a: null, b: null, latest: null },
    ];
    const outcomes = evaluateDataTests(tests, rows, interval);
    assert.deepEqual(
      outcomes.map((o) => [o.name, o.passed, o.failures]),
      [
        ['row_count_drop_ts', false, 19],
        ['quiet', true, 0],
        ['freshness_ts', true, 89],
        ['stale', false, 91],
        ['empty', false, -1],
      ],
    );
    assert.match(
      outcomes[0]?.message ?? '',
      /19 row\(s\) in the interval vs a trailing average of 40\.00 over 4 interval\(s\); expected at least 20\.00/,
    );
  });
});

describe('the project in sql/', () => {
  const project = loadSqlProject();

  test('loads, with stg_events first and customer_features last', () => {
    const names = project.models.map((m) => m.name);
    assert.equal(names[0], 'stg_events');
    assert.equal(names.at(-1), 'customer_features');
    assert.deepEqual(
      new Set(names),
      new Set(['stg_events', 'fct_orders', 'fct_sessions', 'fct_email_interactions', 'fct_app_sessions', 'customer_features']),
    );
    assert.deepEqual(project.byName.get('customer_features')?.refs, [
      'stg_events',
      'fct_sessions',
      'fct_orders',
      'fct_email_interactions',
      'fct_app_sessions',
    ]);
    for (const m of project.models) {
      const sql = renderModelSql(project, m.name, target);
      assert.doesNotMatch(sql, /\{\{|\}\}/, `${m.name} renders every tag`);
      assert.deepEqual(
        referencedParams(sql).filter((p) => p !== 'interval_start' && p !== 'interval_end'),
        [],
        `${m.name} uses only the interval parameters`,
      );
    }
  });

  test('elt/sql-manifest.ts is up to date (regenerate with `npm run elt:manifest`)', () => {
    assert.equal(readFileSync(SQL_MANIFEST_FILE, 'utf8'), renderSqlManifestModule(project));
  });

  test('hourly_pipeline: load_raw -> staging -> facts -> features -> tests -> sync_profiles', () => {
    assert.equal(hourlyPipeline.id, HOURLY_PIPELINE_DAG);
    const byId = new Map(hourlyPipeline.tasks.map((t) => [t.id, t]));
    assert.deepEqual(byId.get('stg_events')?.upstream, ['load_raw']);
    assert.deepEqual(byId.get('fct_orders')?.upstream, ['stg_events']);
    assert.deepEqual(byId.get('test_customer_features')?.upstream, ['customer_features']);
    assert.deepEqual(byId.get('test_customer_features')?.run, { activity: 'runDataTests', args: { model: 'customer_features' } });
    assert.deepEqual([...(byId.get('sync_profiles')?.upstream ?? [])].sort(), project.models.map((m) => `test_${m.name}`).sort());
    const order = topologicalOrder(hourlyPipeline.tasks);
    assert.equal(order[0], 'load_raw');
    assert.equal(order.at(-1), 'sync_profiles');
    assert.ok(order.indexOf('customer_features') > order.indexOf('fct_sessions'));
  });
});
