/**
 * npm run bench:dag — what the runDag workflow costs per task, against Airflow 2.0's published
 * best for 1,000 trivial tasks (AIRFLOW_SECONDS) and segflow's target (TARGET_SECONDS).
 * Each shape (chain, fan-out, lattice) is a DAG of 1,000 trivial `benchNoop` tasks, run once with
 * regular and once with local activities on the production worker in this process, so what is
 * timed is the runner, the worker and the server, not the work:
 *
 *   total wall time  from client.workflow.start to the result, as a caller sees it;
 *   task work        the longest dependency path, each task weighted by the time spent inside
 *                    benchNoop's body (the sum is printed too);
 *   overhead / task  (total wall time - task work) / tasks run.
 */
import { Command, InvalidArgumentError } from 'commander';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { topologicalOrder } from '../core/dag-graph.js';
import { loadConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { benchHarnessDags } from './activities.js';
import { BENCH_SHAPES, BENCH_TASKS, BENCH_WARM_UP_DAG, benchDagId, type BenchShape } from './dags.js';
import type { DagDefinition } from '../dags/dsl.js';
import { dagRegistry } from '../dags/index.js';
import { dagRunWorkflowId, formatInstant, type RunDagInput } from '../workflows/dag-messages.js';
import type { runDag } from '../workflows/run-dag.js';
import { createTemporalClient } from '../workers/client.js';
import { startWorker } from '../workers/worker.js';
import { wholeNumber } from '../scripts/lib/cli.js';
import { printTable } from '../scripts/lib/table.js';

/** Airflow 2.0's published best: 1,000 trivial tasks on four workers with Postgres. */
const AIRFLOW_SECONDS = 11.6;
const TARGET_SECONDS = 5;
const MODES = ['regular', 'local'] as const;
type Mode = (typeof MODES)[number];

function listOf<T extends string>(allowed: readonly T[], name: string) {
  return (value: string): T[] => {
    const items = value
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const bad = items.filter((s) => !(allowed as readonly string[]).includes(s));
    if (items.length === 0 || bad.length > 0) {
      throw new InvalidArgumentError(`${name} must be a comma-separated subset of ${allowed.join(',')}, found "${value}"`);
    }
    return items as T[];
  };
}

const program = new Command('bench:dag')
  .description(
    `Run DAGs of ${BENCH_TASKS} trivial tasks (chain, fan-out, lattice) through runDag with regular and local ` +
      'activities; print wall time and scheduling overhead per task against Airflow 2.0 and the 5 s target.',
  )
  .option('--shapes <list>', `shapes to run: ${BENCH_SHAPES.join(',')}`, listOf(BENCH_SHAPES, '--shapes'), [...BENCH_SHAPES])
  .option('--modes <list>', `activity kinds to run: ${MODES.join(',')}`, listOf(MODES, '--modes'), [...MODES])
  .option(
    '--tasks <n>',
    `tasks to run per DAG; below ${BENCH_TASKS}, the first ones in dependency order are passed as skipTasks ` +
      '(the rerun path) so the registered DAG stays the same',
    wholeNumber(1, BENCH_TASKS),
    BENCH_TASKS,
  )
  .option('--runs <n>', 'runs per shape and mode; the median is reported', wholeNumber(1, 20), 1)
  .showHelpAfterError();
program.parse();
const opts = program.opts<{ shapes: BenchShape[]; modes: Mode[]; tasks: number; runs: number }>();

const config = loadConfig({
  ...process.env,
  TEMPORAL_TASK_QUEUE: `bench-dag-${randomUUID().slice(0, 8)}`,
  SEGFLOW_METRICS_PORT: '0',
  LOG_LEVEL: 'error',
});
const logger = createLogger({ level: 'error', name: 'bench-dag' });

/** benchNoop executions of the current run: task id -> measured work (ms) and how often it ran. */
let current: { dagId: string; workMs: Map<string, number>; executions: Map<string, number>; strays: number } | undefined;

const worker = await startWorker(config, logger, {
  harnessDags: benchHarnessDags({
    onTaskWork(dagId, taskId, workMs) {
      if (current === undefined || current.dagId !== dagId) {
        if (current !== undefined) current.strays++;
        return;
      }
      current.workMs.set(taskId, workMs);
      current.executions.set(taskId, (current.executions.get(taskId) ?? 0) + 1);
    },
  }),
});
const client = await createTemporalClient(config);

interface Measurement {
  wallMs: number;
  criticalWorkMs: number;
  sumWorkMs: number;
  tasksRun: number;
}

let intervalSeq = 0;
/** A fresh interval per run, so each run gets its own `<dag>/<start>` workflow id. */
function nextInterval(): { start: string; end: string } {
  const start = Math.floor(Date.now() / 1000) * 1000 + intervalSeq++;
  return { start: formatInstant(start), end: formatInstant(start + 3_600_000) };
}

async function runOnce(dag: DagDefinition, tasks: number): Promise<Measurement> {
  const order = topologicalOrder(dag.tasks);
  const skipTasks = order.slice(0, dag.tasks.length - tasks);
  const interval = nextInterval();
  const input: RunDagInput = { dagId: dag.id, interval, ...(skipTasks.length > 0 ? { skipTasks } : {}) };
  current = { dagId: dag.id, workMs: new Map(), executions: new Map(), strays: 0 };

  const t0 = performance.now();
  const result = await client.workflow.execute<typeof runDag>('runDag', {
    taskQueue: config.temporal.taskQueue,
    workflowId: dagRunWorkflowId(dag.id, interval.start),
    args: [input],
  });
  const wallMs = performance.now() - t0;

  const run = current;
  current = undefined;
  const notDone = result.tasks.filter((t) => t.state !== 'succeeded' && t.state !== 'skipped');
  const ranWrong = order.slice(skipTasks.length).filter((id) => run.executions.get(id) !== 1);
  if (notDone.length > 0 || ranWrong.length > 0 || run.strays > 0 || run.executions.size !== tasks) {
    throw new Error(
      `${dag.id}: expected each of ${tasks} tasks to run exactly once and succeed; found ${notDone.length} not ` +
        `succeeded (${notDone
          .slice(0, 3)
          .map((t) => `${t.taskId}=${t.state}`)
          .join(', ')}), ${ranWrong.length} run ` +
        `other than once, ${run.executions.size} executed, ${run.strays} from another DAG.`,
    );
  }

  // Longest path through the DAG, each task weighted by its measured work (skipped tasks: 0).
  const finishedAt = new Map<string, number>();
  let criticalWorkMs = 0;
  const upstreamOf = new Map(dag.tasks.map((t) => [t.id, t.upstream ?? []]));
  for (const id of order) {
    const ready = Math.max(0, ...(upstreamOf.get(id) ?? []).map((u) => finishedAt.get(u) ?? 0));
    const end = ready + (run.workMs.get(id) ?? 0);
    finishedAt.set(id, end);
    criticalWorkMs = Math.max(criticalWorkMs, end);
  }
  const sumWorkMs = [...run.workMs.values()].reduce((a, b) => a + b, 0);
  return { wallMs, criticalWorkMs, sumWorkMs, tasksRun: tasks };
}

function median(ms: Measurement[]): Measurement {
  const sorted = [...ms].sort((a, b) => a.wallMs - b.wallMs);
  return sorted[Math.floor((sorted.length - 1) / 2)] as Measurement;
}

const loadAtStart = os.loadavg();
console.log(
  `bench:dag: ${opts.tasks} trivial tasks per DAG, ${opts.runs} run(s) each, task queue ${config.temporal.taskQueue} ` +
    `on ${config.temporal.address}; ${os.cpus().length} CPUs, load average ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}`,
);

// The first workflow task of a fresh worker pays for its workflow context; keep that out of the figures.
const warmUp = nextInterval();
await client.workflow.execute<typeof runDag>('runDag', {
  taskQueue: config.temporal.taskQueue,
  workflowId: dagRunWorkflowId(BENCH_WARM_UP_DAG, warmUp.start),
  args: [{ dagId: BENCH_WARM_UP_DAG, interval: warmUp }],
});

const results: { shape: BenchShape; mode: Mode; m: Measurement }[] = [];
try {
  for (const shape of opts.shapes) {
    for (const mode of opts.modes) {
      const dag = dagRegistry.get(benchDagId(shape, mode === 'local')) as DagDefinition;
      const runs: Measurement[] = [];
      for (let r = 0; r < opts.runs; r++) runs.push(await runOnce(dag, opts.tasks));
      const m = median(runs);
      results.push({ shape, mode, m });
      console.log(`  ${dag.id.padEnd(20)} ${runs.map((x) => `${(x.wallMs / 1000).toFixed(2)} s`).join(', ')}`);
    }
  }
} finally {
  await worker.shutdown();
  await client.connection.close();
}

// The references are for 1,000 tasks; with --tasks below that they are scaled per task.
const scale = opts.tasks / 1000;
const airflowMs = AIRFLOW_SECONDS * 1000 * scale;
const targetMs = TARGET_SECONDS * 1000 * scale;
console.log('');
printTable(
  [
    'shape',
    'activities',
    'wall (s)',
    'work: critical / sum (ms)',
    'overhead/task (ms)',
    `vs Airflow ${(airflowMs / 1000).toFixed(1)} s`,
    `vs target ${(targetMs / 1000).toFixed(1)} s`,
  ],
  results.map(({ shape, mode, m }) => {
    const verdict = (ref: number): string => `${(m.wallMs / ref).toFixed(2)}x ${m.wallMs <= ref ? 'ok' : 'OVER'}`;
    return [
      shape,
      mode,
      (m.wallMs / 1000).toFixed(2),
      `${m.criticalWorkMs.toFixed(2)} / ${m.sumWorkMs.toFixed(2)}`,
      ((m.wallMs - m.criticalWorkMs) / m.tasksRun).toFixed(2),
      verdict(airflowMs),
      verdict(targetMs),
    ];
  }),
  { align: ['left', 'left', 'right', 'right', 'right', 'right', 'right'] },
);
const byShape = new Map<BenchShape, Partial<Record<Mode, Measurement>>>();
for (const { shape, mode, m } of results) byShape.set(shape, { ...byShape.get(shape), [mode]: m });
for (const [shape, modes] of byShape) {
  if (modes.regular && modes.local) {
    console.log(`${shape}: local activities ${(modes.regular.wallMs / modes.local.wallMs).toFixed(1)}x faster than regular`);
  }
}
console.log(
  `ratios are wall time / reference (below 1.00 is faster). load average at end: ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
process.exit(0);
