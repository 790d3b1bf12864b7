/**
 * The DAGs `npm run bench:dag` runs: 1,000 trivial tasks in three shapes, each as regular and as
 * local activities. They are ordinary registered DAGs run by the ordinary runner, so what the
 * benchmark measures is what a real DAG of that shape pays per task.
 */
import { defineDag, type DagDefinition, type DagTaskDefinition, type DefaultTaskOptions } from '../dags/dsl.js';

/** The trivial activity every benchmark task runs (bench/activities.ts). */
export const BENCH_NOOP_ACTIVITY = 'benchNoop';

export const BENCH_SHAPES = ['chain', 'fanout', 'lattice'] as const;
export type BenchShape = (typeof BENCH_SHAPES)[number];

export const BENCH_TASKS = 1_000;
/** Fan-out concurrency, and the cap for the lattice (whose layers are narrower). */
export const BENCH_PARALLELISM = 100;
/** Lattice: BENCH_TASKS / LATTICE_WIDTH layers, each task depending on every task of the layer before. */
export const LATTICE_WIDTH = 20;

const benchDefaults: DefaultTaskOptions = {
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 1 },
  startToCloseTimeout: '30s',
};

export function benchDagId(shape: BenchShape, local: boolean): string {
  return `bench_${shape}${local ? '_local' : ''}`;
}

const DESCRIPTIONS: Readonly<Record<BenchShape, string>> = {
  chain: `${BENCH_TASKS} tasks, each depending on the one before`,
  fanout: `1 root -> ${BENCH_TASKS - 2} parallel tasks -> 1 sink, ${BENCH_PARALLELISM} at a time`,
  lattice: `${BENCH_TASKS / LATTICE_WIDTH} layers of ${LATTICE_WIDTH}, each task depending on the whole layer before`,
};

function benchTasks(shape: BenchShape, local: boolean): DagTaskDefinition[] {
  const task = (id: string, upstream: readonly string[]): DagTaskDefinition => ({
    id,
    run: { activity: BENCH_NOOP_ACTIVITY },
    ...(upstream.length === 0 ? {} : { upstream }),
    ...(local ? { local: true } : {}),
  });
  const pad = (i: number): string => String(i).padStart(4, '0');
  switch (shape) {
    case 'chain':
      return Array.from({ length: BENCH_TASKS }, (_, i) => task(`t${pad(i)}`, i === 0 ? [] : [`t${pad(i - 1)}`]));
    case 'fanout': {
      const middle = Array.from({ length: BENCH_TASKS - 2 }, (_, i) => `t${pad(i)}`);
      return [task('root', []), ...middle.map((id) => task(id, ['root'])), task('sink', middle)];
    }
    case 'lattice': {
      const layer = (l: number): string[] => Array.from({ length: LATTICE_WIDTH }, (_, j) => `l${pad(l)}_${j}`);
      return Array.from({ length: BENCH_TASKS / LATTICE_WIDTH }, (_, l) =>
        layer(l).map((id) => task(id, l === 0 ? [] : layer(l - 1))),
      ).flat();
    }
  }
}

function benchDag(shape: BenchShape, local: boolean): DagDefinition {
  return defineDag({
    id: benchDagId(shape, local),
    description: `Benchmark: ${DESCRIPTIONS[shape]}; trivial work, ${local ? 'local' : 'regular'} activities.`,
    interval: 'hourly',
    defaultTaskOptions: benchDefaults,
    maxParallelism: BENCH_PARALLELISM,
    tasks: () => benchTasks(shape, local),
  });
}

/** A small fan-out run once before the measured runs, so the worker's bundle and caches are warm. */
export const BENCH_WARM_UP_DAG = 'bench_warm_up';

const benchWarmUp = defineDag({
  id: BENCH_WARM_UP_DAG,
  description: 'Benchmark warm-up: one root, six local tasks, one sink.',
  interval: 'hourly',
  defaultTaskOptions: benchDefaults,
  maxParallelism: 2,
  tasks: () => {
    const parts = Array.from({ length: 6 }, (_, i) => `part_${i + 1}`);
    return [
      { id: 'start', run: { activity: BENCH_NOOP_ACTIVITY } },
      ...parts.map((id) => ({ id, run: { activity: BENCH_NOOP_ACTIVITY }, upstream: ['start'], local: true })),
      { id: 'finish', run: { activity: BENCH_NOOP_ACTIVITY }, upstream: parts },
    ];
  },
});

export const benchDags: readonly DagDefinition[] = [
  ...BENCH_SHAPES.flatMap((shape) => [benchDag(shape, false), benchDag(shape, true)]),
  benchWarmUp,
];
