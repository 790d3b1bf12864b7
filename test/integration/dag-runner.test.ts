/**
 * The DAG runner on the real worker and dev server: the benchmark DAGs (bench/dags.ts) run through
 * the production startWorker, whose workflow threads share one preloaded DAG registry.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { topologicalOrder } from '../../core/dag-graph.js';
import { benchHarnessDags } from '../../bench/activities.js';
import { benchDagId, LATTICE_WIDTH } from '../../bench/dags.js';
import { dagRegistry } from '../../dags/index.js';
import { dagRunWorkflowId, formatInstant, type RunDagInput } from '../../workflows/dag-messages.js';
import type { runDag } from '../../workflows/run-dag.js';
import { startHarness, type IntegrationHarness } from '../support/stack.js';

const executions = new Map<string, number>();
let h: IntegrationHarness;
before(async () => {
  h = await startHarness('dag-runner', {
    worker: {
      harnessDags: benchHarnessDags({
        onTaskWork(dagId, taskId) {
          const key = `${dagId}/${taskId}`;
          executions.set(key, (executions.get(key) ?? 0) + 1);
        },
      }),
    },
  });
});
after(async () => {
  await h?.close();
});

let seq = 0;
/** Runs the last `layers` layers of a lattice DAG; the rest is skipped through the rerun path. */
async function runLatticeTail(local: boolean, layers: number) {
  const dag = dagRegistry.get(benchDagId('lattice', local));
  assert.ok(dag, 'the benchmark lattice DAGs are registered');
  const order = topologicalOrder(dag.tasks);
  const run = order.slice(order.length - layers * LATTICE_WIDTH);
  const start = Math.floor(Date.now() / 1000) * 1000 + seq++;
  const input: RunDagInput = {
    dagId: dag.id,
    interval: { start: formatInstant(start), end: formatInstant(start + 3_600_000) },
    skipTasks: order.slice(0, order.length - run.length),
  };
  const result = await h.client.workflow.execute<typeof runDag>('runDag', {
    taskQueue: h.config.temporal.taskQueue,
    workflowId: dagRunWorkflowId(dag.id, input.interval?.start as string),
    args: [input],
  });
  return { dag, run, result };
}

test('benchmark lattices run every task exactly once, as regular and as local activities', async () => {
  // Two runs in a row on one worker: the second reuses the preloaded registry of the first.
  for (const local of [false, true]) {
    const { dag, run, result } = await runLatticeTail(local, 3);
    const states = new Map(result.tasks.map((t) => [t.taskId, t.state]));
    assert.equal(result.tasks.length, dag.tasks.length);
    for (const id of run) {
      assert.equal(states.get(id), 'succeeded', `${dag.id}/${id}`);
      assert.equal(executions.get(`${dag.id}/${id}`), 1, `${dag.id}/${id} ran once`);
    }
    assert.equal([...states.values()].filter((s) => s === 'skipped').length, dag.tasks.length - run.length);
  }
});
