import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignCustomer, nearestCentroid } from '../../../core/segmentation/assign.js';
import { trainSegmentModel } from '../../../core/segmentation/job.js';
import type { SegmentModel } from '../../../core/segmentation/model.js';
import { parseSegmentModel } from '../../../core/segmentation/model.js';
import { applyPreparation } from '../../../core/segmentation/prepare.js';
import { createRng } from '../../../core/random.js';
import { assignmentSql, floatLiteral } from '../../../core/segmentation/sql.js';
import { PERSONA_FEATURES, personaRows } from './fixtures.js';

const { rows } = personaRows(100, 31);
const trained = trainSegmentModel(
  rows,
  { features: PERSONA_FEATURES, kMin: 5, kMax: 5, silhouetteSampleSize: 300, seed: 5 },
  { version: 'seg-sql-1', createdAt: '2026-11-26T02:00:00Z' },
);
// One negative coordinate and a constant feature exercise the literal and zero-range paths.
const model: SegmentModel = {
  ...trained,
  centroids: trained.centroids.map((c, i) => (i === 0 ? [-0.015625, ...c.slice(1)] : c)),
  preparation: {
    ...trained.preparation,
    features: trained.preparation.features.map((f) => (f.name === 'discount_share' ? { ...f, min: 0.25, max: 0.25 } : f)),
  },
};

/** Every number the SQL may legitimately contain as a FLOAT64 literal. */
function modelNumbers(m: SegmentModel): Set<number> {
  // 0 and 1 bound the scaled value; DBL_MAX is the finiteness test of the imputation.
  const out = new Set<number>([0, 1, Number.MAX_VALUE]);
  for (const f of m.preparation.features) {
    out
      .add(f.fill)
      .add(f.min)
      .add(f.max - f.min)
      .add(f.weight);
  }
  for (const c of m.centroids) for (const v of c) out.add(v);
  return out;
}

const FLOAT_LITERAL = /(?<![\w.])\d+\.\d*(?:e[+-]?\d+)?|(?<![\w.])\d+e[+-]?\d+/g;

/** The `expr AS name<j>` items of one CTE, in order. */
function cteItems(sql: string, cte: string, prefix: string): string[] {
  const body = sql.split(`${cte} AS (`)[1]?.split('\n  FROM ')[0] ?? '';
  return [...body.matchAll(new RegExp(`^ {4}(.*) AS ${prefix}(\\d+),?$`, 'gm'))].map((m) => m[1]!);
}

/**
 * Evaluates a SQL arithmetic expression with JavaScript's IEEE-754 operations. A SQL NULL is
 * passed as NaN: both fail `ABS(x) <= DBL_MAX`, which is all the SQL ever asks of them.
 */
function evalSql(expr: string, vars: Record<string, number>): number {
  const js = expr
    .replaceAll('LEAST(', 'Math.min(')
    .replaceAll('GREATEST(', 'Math.max(')
    .replaceAll('LN(', 'Math.log(')
    .replaceAll('ABS(', 'Math.abs(')
    .replace(/\bIF\(/g, 'iff(');
  assert.match(js, /^[\sA-Za-z0-9_.+\-*/(),<=]*$/, `unexpected token in ${expr}`);
  const names = Object.keys(vars);
  const iff = (cond: boolean, a: number, b: number) => (cond ? a : b);
  return new Function('iff', ...names, `return ${js};`)(iff, ...names.map((n) => vars[n])) as number;
}

test('the SQL is deterministic and depends only on the model', () => {
  const a = assignmentSql(model).sql;
  assert.equal(assignmentSql(model).sql, a);
  assert.equal(assignmentSql(parseSegmentModel(JSON.parse(JSON.stringify(model)))).sql, a);
  const q = assignmentSql(model);
  assert.deepEqual(q.params, { model_version: 'seg-sql-1', segment_labels: model.segments.map((s) => s.label) });
  assert.deepEqual(q.columns, ['customer_id', 'segment_id', 'segment_label', 'parent_segment', 'model_version', 'distance', 'margin']);
  assert.match(a, /@model_version AS model_version/);
  assert.match(a, /FROM `marts\.customer_features`/);
});

test('no string literals, and every numeric literal is a model number, ids or offsets', () => {
  const { sql } = assignmentSql(model);
  const code = sql
    .split('\n')
    .filter((l) => !l.startsWith('--'))
    .join('\n');
  assert.doesNotMatch(code, /['"]/, 'no string literal may appear');
  const quoted = [...code.matchAll(/`([^`]*)`/g)].map((m) => m[1]);
  assert.deepEqual(new Set(quoted), new Set(['customer_id', 'marts.customer_features', ...PERSONA_FEATURES.map((f) => f.name)]));
  const allowed = modelNumbers(model);
  const floats = [...code.matchAll(FLOAT_LITERAL)].map((m) => m[0]);
  assert.ok(floats.length > 100);
  for (const lit of floats) {
    const v = Number(lit);
    const negated = code.includes(`(-${lit})`);
    assert.ok(allowed.has(v) || (negated && allowed.has(-v)), `literal ${lit} is not a model number`);
  }
  // Integer literals are only segment ids, centroid indices and OFFSET positions.
  const ints = [
    ...code
      .replace(/`[^`]*`/g, '')
      .replace(FLOAT_LITERAL, '')
      .matchAll(/(?<![\w.])\d+(?![\w.])/g),
  ].map((m) => Number(m[0]));
  const intAllowed = new Set([0, 1, 2, ...model.segments.map((s) => s.id), ...model.centroids.map((_, c) => c)]);
  for (const n of ints) assert.ok(intAllowed.has(n), `integer literal ${n}`);
});

test('the SQL expressions compute the same doubles as the TypeScript path', () => {
  const { sql } = assignmentSql(model);
  const prepared = cteItems(sql, 'prepared', 'x');
  const distances = cteItems(sql, 'distances', 'd');
  assert.equal(prepared.length, model.preparation.features.length);
  assert.equal(distances.length, model.centroids.length);
  const imputed = cteItems(sql, 'imputed', 'i');
  assert.equal(imputed.length, model.preparation.features.length);
  const extra = [
    {},
    Object.fromEntries(PERSONA_FEATURES.map((f) => [f.name, 1e7])),
    Object.fromEntries(PERSONA_FEATURES.map((f) => [f.name, -5])),
    Object.fromEntries(PERSONA_FEATURES.map((f, j) => [f.name, [Number.NaN, Infinity, -Infinity, null][j % 4]])),
  ];
  for (const row of [...rows, ...extra]) {
    const raw: Record<string, number> = {};
    model.preparation.features.forEach((f, j) => {
      const v = (row as Record<string, number | null | undefined>)[f.name];
      raw[`r${j}`] = typeof v === 'number' ? v : Number.NaN;
    });
    const vars = Object.fromEntries(imputed.map((e, j) => [`i${j}`, evalSql(e, raw)]));
    const x = prepared.map((e) => evalSql(e, vars));
    assert.deepEqual(x, applyPreparation(model.preparation, row));
    const xv = Object.fromEntries(x.map((v, j) => [`x${j}`, v]));
    const d = distances.map((e) => evalSql(e, xv));
    const ts = nearestCentroid(x, model.centroids);
    const sqlBest = d.reduce((best, v, c) => (v < d[best]! ? c : best), 0);
    assert.equal(sqlBest, ts.index);
    assert.equal(d[sqlBest], ts.distance);
  }
});

test('the nearest centroid is the first index at the least distance, and the runner-up excludes only it', () => {
  const { sql } = assignmentSql(model);
  const k = model.centroids.length;
  const d = Array.from({ length: k }, (_, c) => `d${c}`);
  assert.ok(sql.includes(`LEAST(${d.join(', ')}) AS best`));
  const whens = d.slice(0, -1).map((name, c) => `WHEN ${name} = best THEN ${c}`);
  assert.ok(sql.includes(`CASE ${whens.join(' ')} ELSE ${k - 1} END AS idx`));
  const others = d.map((name, c) => `IF(idx = ${c}, ${d[(c + 1) % k]}, ${name})`);
  assert.ok(sql.includes(`LEAST(${others.join(', ')}) - best AS margin`));
  // Evaluated as written on tied distances: the lowest tied index wins and the margin is 0, as in TypeScript.
  const distances = [0.5, 0.25, 0.75, 0.25, 0.25].slice(0, k);
  while (distances.length < k) distances.push(1);
  const best = Math.min(...distances);
  const idx = distances.findIndex((v) => v === best);
  const margin = Math.min(...distances.map((v, c) => (c === idx ? distances[(c + 1) % k]! : v))) - best;
  const centroids = distances.map((v) => [Math.sqrt(v)]);
  const ts = nearestCentroid([0], centroids);
  assert.deepEqual([idx, best, margin], [ts.index, ts.distance, ts.margin]);
  assert.deepEqual([idx, margin], [1, 0]);
});

test('names outside the identifier pattern are refused', () => {
  assert.throws(() => assignmentSql(model, { featureColumns: { spend_12m: 'spend; DROP TABLE x' } }), /not a plain lowercase identifier/);
  assert.throws(() => assignmentSql(model, { idColumn: 'Customer-Id' }), /not a plain lowercase identifier/);
  assert.throws(() => assignmentSql(model, { sourceTable: 'marts.customer_features` --' }), /not dataset\.table/);
  assert.throws(() => assignmentSql(model, { featureColumns: { not_a_feature: 'x' } }), /not a model feature/);
  const q = assignmentSql(model, { sourceTable: 'acme-prod.marts.features_v2', featureColumns: { spend_12m: 'spend_gross_12m' } });
  assert.match(q.sql, /CAST\(`spend_gross_12m` AS FLOAT64\) AS r2/);
  assert.match(q.sql, /FROM `acme-prod\.marts\.features_v2`/);
});

test('float literals round-trip exactly and never read as INT64 or a comment', () => {
  const rng = createRng(3);
  const samples = [0, 1, 3, 0.1, 1 / 3, 5e-324, 1e21, 123456789012345680000, 2 ** 53 + 2, -0.5, -1e-7, Number.MAX_VALUE];
  for (let i = 0; i < 2000; i++) samples.push((rng.next() - 0.5) * 10 ** Math.floor(rng.next() * 40 - 20));
  for (const x of samples) {
    const lit = floatLiteral(x);
    const bare = lit.replace(/^\((.*)\)$/, '$1');
    assert.equal(Number(bare), x, `${x} -> ${lit}`);
    assert.match(bare, /^-?\d+(\.\d*)?(e[+-]\d+)?$/);
    assert.match(bare, /[.e]/);
    assert.equal(lit.startsWith('('), x < 0);
  }
  assert.equal(floatLiteral(-0), '0.0');
  assert.throws(() => floatLiteral(Number.NaN), /not finite/);
  assert.throws(() => floatLiteral(Infinity), /not finite/);
});

test('a one-segment model has no runner-up', () => {
  const { hierarchy: _tree, ...flat } = model;
  const one: SegmentModel = {
    ...flat,
    centroids: [model.centroids[0]!],
    segments: [model.segments[0]!],
    k_selection: { ...model.k_selection, chosen_k: 1 },
  };
  const { sql } = assignmentSql(one, { includeLabels: false });
  assert.match(sql, /CAST\(NULL AS FLOAT64\) AS margin/);
  assert.match(sql, /d0 AS best/);
  assert.match(sql, /0 AS idx/);
  assert.doesNotMatch(sql, /@segment_labels/);
  assert.match(sql, /CAST\(NULL AS INT64\) AS parent_segment/, 'no hierarchy: no parent');
});

test('the parent segment column maps each centroid to its parent id, as the TypeScript assignment does', () => {
  assert.ok(model.hierarchy);
  const { sql } = assignmentSql(model);
  const parents = model.segments.map((s) => model.hierarchy!.parents.find((p) => p.members.includes(s.id))!.id);
  assert.ok(sql.includes(`[${parents.join(', ')}][OFFSET(idx)] AS parent_segment`), sql.split('SELECT').at(-1));
  for (const row of rows.slice(0, 50)) {
    const vector = applyPreparation(model.preparation, row);
    const idx = nearestCentroid(vector, model.centroids).index;
    assert.equal(assignCustomer(model, row).parent?.id, parents[idx]);
  }
});

test('category values and levels reach the SQL only as the @feature_values parameter', () => {
  const hostile = "x'; DROP TABLE marts.customer_features; --";
  const catRows = rows.map((r, i) => ({ ...r, country: [hostile, hostile, 'DE', 'US', null][i % 5]!, band: ['low', 'high', ''][i % 3]! }));
  const m = trainSegmentModel(
    catRows,
    {
      features: [
        ...PERSONA_FEATURES,
        { name: 'country', kind: 'categorical', weight: 0.5, top: 2 },
        { name: 'band', kind: 'ordinal', weight: 0.5, levels: ['low', 'mid', 'high'] },
      ],
      kMin: 3,
      kMax: 3,
      silhouetteSampleSize: 300,
      seed: 5,
    },
    { version: 'seg-sql-cat', createdAt: '2026-11-26T02:00:00Z' },
  );
  const q = assignmentSql(m);
  assert.ok(!q.sql.includes('DROP'), 'no value inlined');
  assert.ok(q.params.feature_values?.includes(hostile));
  assert.deepEqual(q.types.feature_values, ['STRING']);
  // One-hot dimensions for the two kept values and `other`, one ordinal dimension; their imputation rules.
  const dims = m.preparation.features.filter((f) => f.kind !== undefined).map((f) => [f.name, f.impute]);
  assert.equal(dims.length, 4);
  assert.ok(dims.some(([n]) => n === 'country=(other)'));
  assert.deepEqual(dims.at(-1), ['band', 'median']);
  assert.match(q.sql, /CAST\(`country` AS STRING\)/);
  assert.match(q.sql, /COALESCE\(CASE i\d+ WHEN @feature_values\[OFFSET\(\d+\)\] THEN 0\.0/);
});
