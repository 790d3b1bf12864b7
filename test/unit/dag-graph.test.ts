import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DagValidationError,
  buildDagGraph,
  downstreamClosure,
  findCycle,
  topologicalLevels,
  topologicalOrder,
  type DagProblem,
} from '../../core/dag-graph.js';
import {
  assertDagActivitiesRegistered,
  createDagRegistry,
  defineDag,
  durationToMs,
  resolveTaskOptions,
  type DagSpec,
  type DagTaskDefinition,
} from '../../dags/dsl.js';
import { SQL_MODEL_ACTIVITY } from '../../elt/names.js';
import { HOURLY_PIPELINE_DAG, NIGHTLY_SEGMENTATION_DAG } from '../../core/dag-ids.js';
import { dagRegistry, registerDags } from '../../dags/index.js';
import { exampleDags } from '../support/example-dags.js';

const defaults: DagSpec['defaultTaskOptions'] = {
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 3 },
  startToCloseTimeout: '5m',
};

function spec(tasks: DagSpec['tasks'], overrides: Partial<DagSpec> = {}): DagSpec {
  return { id: 'test_dag', interval: 'hourly', defaultTaskOptions: defaults, maxParallelism: 4, tasks, ...overrides };
}

const step = (id: string, upstream: string[] = []): DagTaskDefinition => ({ id, run: { activity: 'step' }, upstream });

function problemsOf(fn: () => unknown): readonly DagProblem[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof DagValidationError, `expected DagValidationError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('expected a DagValidationError');
}

describe('DAG validation', () => {
  test('a cycle is rejected with its path', () => {
    const build = () => defineDag(spec([step('a'), step('b', ['a', 'd']), step('c', ['b']), step('d', ['c'])]));
    assert.throws(build, /cycle b -> c -> d -> b/);
    assert.deepEqual(problemsOf(build), [{ kind: 'cycle', path: ['b', 'c', 'd', 'b'] }]);
  });

  test('a task depending on itself is a cycle', () => {
    assert.throws(() => defineDag(spec([step('a', ['a'])])), /cycle a -> a/);
  });

  test('an unknown upstream is rejected naming the task and the upstream', () => {
    assert.throws(
      () => defineDag(spec([step('extract'), step('load', ['extract', 'transfrom'])])),
      /task "load" lists unknown upstream "transfrom"/,
    );
  });

  test('a duplicate task id is rejected naming it', () => {
    assert.throws(() => defineDag(spec([step('a'), step('b', ['a']), step('a')])), /duplicate task id "a"/);
  });

  test('an unknown activity is rejected naming the task and the activity', () => {
    const dag = defineDag(
      spec([step('a'), { id: 'b', run: { activity: 'stpe' }, upstream: ['a'] }, { id: 'm', run: { sqlModel: 'stg' } }]),
    );
    assert.throws(
      () => assertDagActivitiesRegistered(dag, ['step']),
      (err: unknown) =>
        err instanceof DagValidationError &&
        /task "b" runs activity "stpe"/.test(err.message) &&
        new RegExp(`task "m" runs activity "${SQL_MODEL_ACTIVITY}"`).test(err.message) &&
        err.problems.length === 2,
    );
    assert.doesNotThrow(() => assertDagActivitiesRegistered(dag, ['step', 'stpe', SQL_MODEL_ACTIVITY]));
  });

  test('every problem is reported at once, with the DAG id', () => {
    const build = () =>
      defineDag(
        spec([step('a'), step('a'), step('b', ['zz'])], {
          maxParallelism: 0,
          defaultTaskOptions: { ...defaults, startToCloseTimeout: '5 minutes' as '5m' },
        }),
      );
    assert.throws(build, /DAG "test_dag" is invalid/);
    const kinds = problemsOf(build).map((p) => p.kind);
    assert.deepEqual(kinds.sort(), ['duplicate_task', 'invalid_option', 'invalid_option', 'unknown_upstream']);
  });

  test('options are checked: local tasks cannot heartbeat, attempts must be whole', () => {
    assert.throws(
      () => defineDag(spec([{ ...step('a'), local: true, heartbeatTimeout: '10s' }])),
      /task "a": local cannot be combined with heartbeatTimeout/,
    );
    assert.throws(
      () => defineDag(spec([{ ...step('a'), retry: { maximumAttempts: 1.5 } }])),
      /task "a": retry.maximumAttempts must be an integer/,
    );
    assert.throws(() => defineDag(spec([step('a')], { id: 'has/slash' })), /id must match/);
  });

  test('tasks can be computed by a function', () => {
    const dag = defineDag(spec(() => Array.from({ length: 5 }, (_, i) => step(`t${i}`, i === 0 ? [] : [`t${i - 1}`]))));
    assert.deepEqual(
      dag.tasks.map((t) => t.id),
      ['t0', 't1', 't2', 't3', 't4'],
    );
    assert.equal(JSON.stringify(JSON.parse(JSON.stringify(dag))), JSON.stringify(dag), 'definition is plain JSON data');
  });

  test('a registry refuses two DAGs with one id', () => {
    const dag = defineDag(spec([step('a')]));
    assert.throws(() => createDagRegistry([dag, dag]), /Two DAGs are defined with id "test_dag"/);
  });

  test('the production registry holds the production DAGs only; a harness adds its own, keyed by id', async () => {
    assert.deepEqual([...dagRegistry.keys()].sort(), [HOURLY_PIPELINE_DAG, NIGHTLY_SEGMENTATION_DAG]);
    await import('../support/register-example-dags.js');
    assert.equal(dagRegistry.get('example_diamond')?.id, 'example_diamond');
    assert.equal(dagRegistry.get('example_cleanup')?.id, 'example_cleanup');
    // Loading the same definitions again changes nothing; another DAG under a taken id is refused.
    registerDags(exampleDags);
    assert.throws(
      () => registerDags([defineDag({ ...spec([step('a')]), id: 'example_diamond' })]),
      /Two DAGs are defined with id "example_diamond"/,
    );
  });
});

describe('DAG topology', () => {
  const diamond = [step('load', ['left', 'right']), step('left', ['extract']), step('right', ['extract']), step('extract')];

  test('topological order puts every task after its upstreams, ties in declaration order', () => {
    assert.deepEqual(topologicalOrder(diamond), ['extract', 'left', 'right', 'load']);
  });

  test('levels group tasks that can run in parallel', () => {
    assert.deepEqual(topologicalLevels(diamond), [['extract'], ['left', 'right'], ['load']]);
    assert.deepEqual(topologicalLevels([step('a'), step('b'), step('c', ['a'])]), [['a', 'b'], ['c']]);
  });

  test('topology of an invalid graph throws', () => {
    assert.throws(() => topologicalOrder([step('a', ['b']), step('b', ['a'])]), /cycle/);
  });

  test('a 10,000-task chain does not overflow the stack', () => {
    const chain = Array.from({ length: 10_000 }, (_, i) => step(`t${i}`, i === 0 ? [] : [`t${i - 1}`]));
    assert.equal(findCycle(chain), undefined);
    assert.equal(topologicalOrder(chain).at(-1), 't9999');
    const looped = [...chain.slice(1), step('t0', ['t9999'])];
    assert.equal(findCycle(looped)?.length, 10_001);
  });

  test('graph indices: repeated upstreams count once; downstream closure', () => {
    const graph = buildDagGraph([step('a'), step('b', ['a', 'a']), step('c', ['b']), step('d')]);
    assert.deepEqual(graph.upstream, [[], [0], [1], []]);
    assert.deepEqual(graph.downstream, [[1], [2], [], []]);
    assert.deepEqual([...downstreamClosure(graph, ['b'])].sort(), ['b', 'c']);
  });
});

describe('task options', () => {
  test('a task overrides the DAG defaults field by field', () => {
    const dag = defineDag(spec([step('a'), { ...step('b'), retry: { maximumAttempts: 5 }, startToCloseTimeout: '30s', local: true }]));
    const [a, b] = dag.tasks.map((t) => resolveTaskOptions(dag, t));
    assert.deepEqual(a?.retry, {
      initialIntervalMs: 1000,
      backoffCoefficient: 2,
      maximumIntervalMs: 60_000,
      maximumAttempts: 3,
      nonRetryableErrorTypes: [],
    });
    assert.equal(a?.startToCloseTimeoutMs, 300_000);
    assert.equal(a?.local, false);
    assert.equal(b?.retry.maximumAttempts, 5);
    assert.equal(b?.retry.initialIntervalMs, 1000);
    assert.equal(b?.startToCloseTimeoutMs, 30_000);
    assert.equal(b?.local, true);
  });

  test('durations', () => {
    assert.equal(durationToMs(250), 250);
    assert.equal(durationToMs('1.5s'), 1500);
    assert.equal(durationToMs('2h'), 7_200_000);
    assert.ok(Number.isNaN(durationToMs('2 hours' as '2h')));
  });
});
