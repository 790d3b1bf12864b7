import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assetTargets, findAssetProblems, neededPartitions } from '../../dags/assets.js';
import { defineDag, type DagSpec } from '../../dags/dsl.js';
import { dagRegistry } from '../../dags/index.js';
import { DagValidationError } from '../../core/dag-graph.js';

const base: Omit<DagSpec, 'id' | 'interval'> = {
  defaultTaskOptions: {
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 1 },
    startToCloseTimeout: '1m',
  },
  maxParallelism: 1,
  tasks: [{ id: 'only', run: { activity: 'exampleTask' } }],
};

test('an hourly run of hourly_pipeline counts towards the nightly_segmentation day it falls in', () => {
  const hourly = dagRegistry.get('hourly_pipeline');
  assert.ok(hourly);
  const targets = assetTargets(dagRegistry.values(), hourly, { start: '2026-11-26T23:00:00Z', end: '2026-11-27T00:00:00Z' });
  assert.deepEqual(targets, [
    {
      dagId: 'nightly_segmentation',
      interval: { start: '2026-11-26T00:00:00Z', end: '2026-11-27T00:00:00Z' },
      assets: ['marts.customer_features'],
    },
  ]);
  const nightly = dagRegistry.get('nightly_segmentation');
  assert.ok(nightly);
  const needed = neededPartitions(dagRegistry.values(), nightly, targets[0]?.interval ?? { start: '', end: '' });
  const hours = needed.get('marts.customer_features') ?? [];
  assert.equal(hours.length, 24);
  assert.equal(hours[0], '2026-11-26T00:00:00Z');
  assert.equal(hours[23], '2026-11-26T23:00:00Z');
});

test('asset declarations that do not fit together are named', () => {
  const daily = defineDag({ ...base, id: 'daily_producer', interval: 'daily', produces: ['a.x'] });
  const hourly = defineDag({
    ...base,
    id: 'hourly_dependent',
    interval: 'hourly',
    triggeredBy: { assets: ['a.x', 'a.y'], schedule: 'instead' },
  });
  const twin = defineDag({ ...base, id: 'twin', interval: 'daily', produces: ['a.x'] });
  const problems = findAssetProblems([daily, hourly, twin]);
  assert.ok(
    problems.some((p) => /"a\.x" is produced by daily_producer and twin/.test(p)),
    problems.join('\n'),
  );
  assert.ok(problems.some((p) => /triggered by "a\.y", which no DAG produces/.test(p)));
  assert.ok(problems.some((p) => /hourly_dependent \(hourly\) cannot be triggered by daily_producer \(daily\)/.test(p)));
  assert.deepEqual(findAssetProblems([...dagRegistry.values()]), []);
});

test('triggeredBy is validated with the DAG', () => {
  assert.throws(
    () => defineDag({ ...base, id: 'bad', interval: 'daily', triggeredBy: { assets: [], schedule: 'beside' } }),
    (err: unknown) =>
      err instanceof DagValidationError &&
      /must name at least one asset/.test(err.message) &&
      /"beside" needs a schedule/.test(err.message),
  );
});
