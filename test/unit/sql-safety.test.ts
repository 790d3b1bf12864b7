/**
 * No query is built by splicing a value into SQL text.
 *
 * - Identifiers that come from configuration (project, datasets) are checked against a strict
 *   pattern where the configuration is loaded and again where a table name is built.
 * - The query builders put values in @parameters and refuse identifiers that are not plain names.
 * - The SQL models reference no parameters but the data interval's.
 * - A source scan: every `${...}` inside a template literal that reads as SQL must be one of the
 *   reviewed expressions below (table names from qualifiedTable, columns from quoteColumn,
 *   numbers the code generated, SQL fragments from files in this repository). A new one fails
 *   the test until it is reviewed: bind the value as @param, or build the name with
 *   qualifiedTable/quoteColumn and add it here with the reason.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { loadSqlProject } from '../../elt/load-project.js';
import { ConfigError, parseConfig, PROJECT_ROOT } from '../../core/config.js';
import { parseSegmentModel } from '../../core/segmentation/model.js';
import { assignmentSql } from '../../core/segmentation/sql.js';
import { dataTestsQuery } from '../../elt/data-test-query.js';
import { parseDataTests } from '../../elt/data-tests.js';
import { createTableAsSql, deleteInsertSql, mergeSql, replaceContentsSql } from '../../elt/materialize.js';
import { INTERVAL_PARAMS, qualifiedTable, quoteColumn } from '../../elt/names.js';
import { renderModelSql } from '../../elt/project.js';
import { referencedParams, stripSqlComments } from '../../elt/sql-text.js';
import { twoSegmentModel } from '../support/realtime-fixtures.js';

const HOSTILE_NAMES = [
  'raw`; DROP TABLE raw.events; --',
  "raw'",
  'raw"',
  'raw.events',
  'raw events',
  'raw;',
  'raw--',
  'raw/*',
  '@raw',
  'raw\\',
  'raw\u0000',
  'raw\n',
  '{{ raw }}',
  '${raw}',
  'rаw', // Cyrillic a
  '',
];

describe('configuration: identifiers are plain names before any SQL sees them', () => {
  for (const variable of ['SEGFLOW_DATASET_RAW', 'SEGFLOW_DATASET_STAGING', 'SEGFLOW_DATASET_MARTS']) {
    it(`${variable} refuses anything but letters, digits and underscores, naming the variable`, () => {
      for (const name of HOSTILE_NAMES) {
        assert.throws(
          () => parseConfig({ [variable]: name }),
          (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.startsWith(`${variable}:`)),
          JSON.stringify(name),
        );
      }
      assert.equal(
        parseConfig({ [variable]: 'Raw_2026' }).warehouse[
          variable === 'SEGFLOW_DATASET_RAW' ? 'raw' : variable === 'SEGFLOW_DATASET_STAGING' ? 'staging' : 'marts'
        ],
        'Raw_2026',
      );
    });
  }

  it('GCP_PROJECT refuses quotes, backticks and dots', () => {
    for (const project of ['segflow`-local', "segflow'local", 'segflow.local', 'segflow-local`.x.y` --', 'Segflow-local']) {
      assert.throws(
        () => parseConfig({ GCP_PROJECT: project }),
        (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.startsWith('GCP_PROJECT:')),
      );
    }
  });
});

describe('query builders', () => {
  it('qualifiedTable and quoteColumn refuse every hostile name', () => {
    for (const name of HOSTILE_NAMES) {
      assert.throws(() => qualifiedTable('segflow-local', name, 'events'), /dataset: expected a BigQuery identifier/, JSON.stringify(name));
      assert.throws(() => qualifiedTable('segflow-local', 'raw', name), /table: expected a BigQuery identifier/, JSON.stringify(name));
      assert.throws(() => quoteColumn(name), /column: expected a BigQuery identifier/, JSON.stringify(name));
    }
    assert.throws(() => qualifiedTable('segflow`-local', 'raw', 'events'), /project id/);
    assert.equal(qualifiedTable('segflow-local', 'raw', 'events'), '`segflow-local.raw.events`');
  });

  it('statement builders take names through quoteColumn', () => {
    const t = qualifiedTable('segflow-local', 'raw', 'events');
    const s = qualifiedTable('segflow-local', 'raw', 'stage');
    for (const bad of ['x`; DROP', "x' OR 1=1"]) {
      assert.throws(() => mergeSql(t, s, ['a', bad], ['a']), /column/);
      assert.throws(() => deleteInsertSql(t, s, ['a'], [bad]), /column/);
      assert.throws(() => replaceContentsSql(t, s, [bad]), /column/);
      assert.throws(() => createTableAsSql(t, 'SELECT 1', { clusterBy: [bad] }), /column/);
    }
  });

  it('data tests bind hostile accepted values and the interval as parameters, never as text', () => {
    const hostile = ["'; DROP TABLE raw.events; --", '" OR 1=1 --', '{{ customer_id }}', '@interval_start', '\\', '\u0000'];
    const tests = parseDataTests(
      'm',
      JSON.stringify({
        tests: [
          { type: 'accepted_values', column: 'type', values: hostile },
          { type: 'freshness', column: 'ts', max_age: '1h' },
        ],
      }),
    );
    const interval = { start: new Date('2026-11-26T09:00:00Z'), end: new Date('2026-11-26T10:00:00Z') };
    const q = dataTestsQuery(tests, qualifiedTable('segflow-local', 'staging', 'events'), interval);
    for (const v of hostile.filter((v) => v.length > 1))
      assert.ok(!q.sql.includes(v) || v === '@interval_start', `${JSON.stringify(v)} is not in the SQL text`);
    assert.ok(!q.sql.includes('DROP') && !q.sql.includes('2026-11-26'));
    assert.deepEqual(q.params.accepted_values_0, hostile);
    for (const p of referencedParams(q.sql)) assert.ok(p in q.params, `@${p} has a value`);
    assert.throws(() => parseDataTests('m', JSON.stringify({ tests: [{ type: 'not_null', columns: ['x`; DROP'] }] })), /column/);
  });

  it('batch assignment SQL writes only generated numbers and checked names; the model version and labels are parameters', () => {
    assert.throws(() => twoSegmentModel("v'; DROP TABLE x; --"), /version/, 'a model version is a plain name');
    const model = twoSegmentModel('v-2026-11-26');
    const gen = assignmentSql(model, { sourceTable: 'segflow-local.marts.customer_features' });
    assert.ok(
      !gen.sql.includes('v-2026-11-26') && !gen.sql.includes('VIP') && !gen.sql.includes('Occasional'),
      'version and labels stay out of the text',
    );
    assert.equal(gen.params.model_version, 'v-2026-11-26');
    assert.deepEqual(gen.params.segment_labels, ['Occasional', 'VIP']);
    assert.deepEqual(new Set(referencedParams(gen.sql)), new Set(Object.keys(gen.params)));
    for (const bad of ['marts.customer_features`; DROP', "marts.x'", 'a.b.c.d', 'marts']) {
      assert.throws(() => assignmentSql(model, { sourceTable: bad }), /source table/, bad);
    }
    assert.throws(() => assignmentSql(model, { idColumn: 'id`; --' }), /id column/);
    assert.throws(() => assignmentSql(model, { featureColumns: { frequency: 'f`--' } }), /column for feature/);
    // A feature name is an identifier by the model schema, so a hostile one never reaches SQL.
    const json = JSON.parse(JSON.stringify(model)) as { preparation: { features: Array<{ name: string }> } };
    json.preparation.features[0]!.name = 'frequency`; DROP';
    assert.throws(() => parseSegmentModel(json));
  });
});

describe('SQL models', () => {
  const project = loadSqlProject();
  const target = { projectId: 'segflow-local', datasets: { raw: 'raw', staging: 'staging', marts: 'marts' } };

  it('reference no parameter but the data interval, and render only checked table names', () => {
    assert.ok(project.models.length >= 5);
    for (const m of project.models) {
      const sql = renderModelSql(project, m.name, target);
      const params = referencedParams(sql);
      assert.ok(
        params.every((p) => (INTERVAL_PARAMS as readonly string[]).includes(p)),
        `${m.name} uses @${params.join(', @')}`,
      );
      assert.ok(!/\{\{|\{%|\$\{/.test(stripSqlComments(sql)), `${m.name}: no template syntax is left after rendering`);
      for (const name of HOSTILE_NAMES) {
        assert.throws(
          () => renderModelSql(project, m.name, { ...target, datasets: { raw: name, staging: name, marts: name } }),
          /dataset/,
          `${m.name} ${JSON.stringify(name)}`,
        );
      }
    }
  });
});

// ---------------------------------------------------------------------------
// Source scan

/** Reviewed `${...}` expressions inside SQL template literals, by file, with why each is safe. */
const REVIEWED: Readonly<Record<string, readonly string[]>> = {
  // `table` = qualifiedTable(...); `where` is a constant string.
  'activities/profile-sync.ts': ['table'],
  'activities/reclassify.ts': ['table', 'where'],
  // qualifiedTable(project, marts, <literal>) in every task of activities/segmentation/.
  'activities/segmentation/assign-all.ts': [
    "table('customer_segments')",
    // assignmentSql output (see the test above)
    'gen.sql',
  ],
  'activities/segmentation/extract.ts': [
    "table('customer_features')",
    // feature names: identifiers by FeatureSpecListSchema; filter: a constant with @salt or TRUE
    'select',
    'filter',
    'f',
    // one of two type names, by the feature's kind
    "numeric[j] ? 'FLOAT64' : 'STRING'",
    // integers computed from validated configuration (LIMIT takes no CAST(@param))
    'threshold',
    'settings.pageSize',
  ],
  'activities/segmentation/promote.ts': ["table('segment_models')"],
  // table = qualifiedTable(...); column = quoteColumn(...); filter: one of two constants over that column.
  'activities/sensors.ts': ['table', 'column', 'filter'],
  'activities/segmentation/register.ts': ["table('segment_models')"],
  'activities/segmentation/stability.ts': [
    "table('customer_segments')",
    "table('segment_stability')",
    // choose between a @param and NULL
    "step.previousVersion === null ? 'NULL' : '@prev'",
    "f ? 'CAST(@changed AS FLOAT64)' : 'NULL'",
    "f ? 'CAST(@ari AS FLOAT64)' : 'NULL'",
    "f ? 'CAST(@drift AS FLOAT64)' : 'NULL'",
  ],
  // The smoke table id is reduced to [A-Za-z0-9_]; the project is the client's own.
  'activities/smoke.ts': ['bigquery.projectId', 'SMOKE_DATASET', 'tableId'],
  // qualifiedTable refs and quoteColumn lists.
  'activities/warehouse.ts': [
    "missing.map((f) => quoteColumn(f.name as string)).join(', ')",
    'rawEventsRef',
    'columns',
    'loadRef',
    'stageRef',
  ],
  // A Temporal visibility query over the benchmark's own task queue (not SQL; config value).
  'bench/realtime.ts': ['config.temporal.taskQueue'],
  // `ref` = qualifiedTable(project, dataset, table) over the tables segflow writes (sql/ models, raw, marts).
  'activities/forget.ts': ['ref'],
  // A Temporal visibility query (not SQL); the DAG id is one of the registry's, stripped to [a-z0-9_].
  'api/segments-store.ts': ["dagId.replace(/[^a-z0-9_]/g, '')"],
  // Constant SQL fragments chosen by a null check, and `where`, a constant string; values are @params.
  'stores/model-registry.ts': ["record.previous_version === null ? 'NULL' : '@prev'", "record.note === null ? 'NULL' : '@note'", 'where'],
  // Feature names (identifiers checked by the feature spec schema), their cast chosen by kind, a
  // qualifiedTable name and a whole number.
  'scripts/lib/segment-compare.ts': ['f', "numeric[j] ? 'FLOAT64' : 'STRING'", 'table', 'select', 'Math.floor(size)'],
  // Generated numbers (floatLiteral/intLiteral), checked identifiers and the names built from them.
  'core/segmentation/sql.ts': [
    'from',
    "blank.join(', ')",
    'idColumn',
    'c',
    'j',
    'name',
    'ids',
    "whens.join(' ')",
    "terms.join(' + ')",
    "others.join(', ')",
    "dNames.join(', ')",
    'intLiteral(k - 1)',
    'floatLiteral(f.fill)',
    'floatLiteral(Number.MAX_VALUE)',
    "includeLabels ? ', @segment_labels ARRAY<STRING> (label per centroid index)' : ''",
    // Category values and levels: only @feature_values[OFFSET(<generated int>)], never the value itself.
    'intLiteral(i)',
    'raw',
    'values.ref(f.fill_category!)',
    "(features[j]!.kind ?? 'numeric') === 'numeric' ? 'FLOAT64' : 'STRING'",
    'imputedExpression(f, `r${j}`, values)',
    'preparedExpression(f, `i${j}`, values)',
    "values.values.length > 0 ? ', @feature_values ARRAY<STRING> (category values and levels)' : ''",
    // The parent segment per centroid index: generated ints from the model's hierarchy.
    "model.segments.map((s) => intLiteral(parentOf.get(s.id)!)).join(', ')",
  ],
  // Names from qualifiedTable/quoteColumn; updateIf/partitionBy are SQL written in this
  // repository's sql/ files (validated by the config header's schema), never data.
  'elt/materialize.ts': [
    'table',
    'on',
    'options.partitionBy',
    "options.clusterBy.map(quoteColumn).join(', ')",
    'target',
    'source',
    'updateIf',
    "updateIf === undefined ? '' : ` AND (${updateIf})`",
    "updates.join(', ')",
    "cols.join(', ')",
    "cols.map((c) => `S.${c}`).join(', ')",
    'cols',
    'keyCols[0]',
    "keyCols.join(', ')",
    'match',
  ],
  // Names from qualifiedTable/quoteColumn; where/expression are SQL from sql/<model>.tests.json
  // (validated by its schema), never data; i/a/b/latest are generated by the query builder.
  'elt/data-test-query.ts': [
    "parts.join(' AND ')",
    'i',
    'a',
    'b',
    'latest',
    'from',
    'cols',
    'table',
    'c',
    'whereOf(test.where)',
    'test.expression',
    'test.column',
    'quoteColumn(test.column)',
    // data test result messages (prose with the word NULL)
    'n',
  ],
};

const SCANNED_DIRS = ['activities', 'stores', 'elt', 'core', 'api', 'workers', 'schedules', 'scripts', 'dags', 'sql', 'bench', 'workflows'];
/** Uppercase SQL words or an @param: what a query's text has and prose rarely does. */
const LOOKS_LIKE_SQL =
  /\b(SELECT|INSERT|DELETE|MERGE|UPDATE|CREATE|DROP|FROM|WHERE|UNION|QUALIFY|PARTITION BY|CLUSTER BY|LIMIT|CAST|COUNTIF|JOIN|VALUES|AS|AND|OR|IN|ON|SET|NULL)\b|(^|[^@\w])@[A-Za-z_]/;

function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const full = path.join(dir, entry);
      if (statSync(full).isDirectory()) walk(full);
      else if (full.endsWith('.ts')) out.push(full);
    }
  };
  for (const d of SCANNED_DIRS) walk(path.join(PROJECT_ROOT, d));
  return out;
}

function joinConstant(a: string | undefined, b: string | undefined): string | undefined {
  return a === undefined || b === undefined ? undefined : a + b;
}

/** Every `${expr}` of a template literal reading as SQL, and every `+` joining SQL text and an expression. */
export function sqlSplices(file: string, text: string): Array<{ line: number; expression: string }> {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: Array<{ line: number; expression: string }> = [];
  const at = (node: ts.Node) => source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
  const literalText = (node: ts.Node): string | undefined =>
    ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)
      ? node.text
      : ts.isTemplateExpression(node)
        ? node.head.text + node.templateSpans.map((s) => s.literal.text).join(' ')
        : ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.PlusToken
          ? joinConstant(literalText(node.left), literalText(node.right))
          : ts.isParenthesizedExpression(node)
            ? literalText(node.expression)
            : undefined;
  const visit = (node: ts.Node) => {
    if (ts.isTemplateExpression(node) && LOOKS_LIKE_SQL.test(literalText(node)!)) {
      for (const span of node.templateSpans)
        found.push({ line: at(span.expression), expression: span.expression.getText().replace(/\s+/g, ' ') });
    }
    if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.PlusToken) {
      const [l, r] = [literalText(node.left), literalText(node.right)];
      if (l !== undefined && LOOKS_LIKE_SQL.test(l) && r === undefined)
        found.push({ line: at(node.right), expression: node.right.getText().replace(/\s+/g, ' ') });
      if (r !== undefined && LOOKS_LIKE_SQL.test(r) && l === undefined)
        found.push({ line: at(node.left), expression: node.left.getText().replace(/\s+/g, ' ') });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('source scan: values never spliced into SQL text', () => {
  it('the scan finds a spliced value (so it can fail)', () => {
    const splices = sqlSplices(
      'x.ts',
      "const q = `SELECT * FROM t WHERE customer_id = '${customerId}'`; const r = 'DELETE FROM t WHERE id = ' + id;",
    );
    assert.deepEqual(
      splices.map((s) => s.expression),
      ['customerId', 'id'],
    );
  });

  it('every reviewed file is one the scan reads (a moved file keeps its review)', () => {
    const scanned = new Set(sourceFiles().map((f) => path.relative(PROJECT_ROOT, f).split(path.sep).join('/')));
    assert.deepEqual(
      Object.keys(REVIEWED).filter((f) => !scanned.has(f)),
      [],
    );
  });

  it('every expression spliced into SQL text is a reviewed, safe one', () => {
    const unreviewed: string[] = [];
    for (const file of sourceFiles()) {
      const rel = path.relative(PROJECT_ROOT, file).split(path.sep).join('/');
      const allowed = new Set(REVIEWED[rel] ?? []);
      for (const s of sqlSplices(rel, readFileSync(file, 'utf8'))) {
        if (!allowed.has(s.expression)) unreviewed.push(`${rel}:${s.line}  \${${s.expression}}`);
      }
    }
    assert.deepEqual(
      unreviewed,
      [],
      'SQL text with an unreviewed interpolation. Bind values as @params (runQuery/createQueryJob params); build names with ' +
        'qualifiedTable/quoteColumn; then list the expression in REVIEWED with the reason it is safe.',
    );
  });
});
