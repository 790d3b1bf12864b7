/**
 * DAG graph logic: validation, topological order and the index-based adjacency the DAG runner
 * schedules from. Pure and dependency-free so it runs in workflow code, the worker and the CLI.
 * Tasks are typed structurally here; the DAG DSL lives in `dags/dsl.ts`.
 */

export interface GraphTask {
  readonly id: string;
  readonly upstream?: readonly string[] | undefined;
}

export type DagProblem =
  | { readonly kind: 'duplicate_task'; readonly taskId: string }
  | { readonly kind: 'unknown_upstream'; readonly taskId: string; readonly upstream: string }
  | { readonly kind: 'cycle'; readonly path: readonly string[] }
  | { readonly kind: 'unknown_activity'; readonly taskId: string; readonly activity: string }
  | { readonly kind: 'invalid_option'; readonly taskId?: string; readonly option: string; readonly message: string };

export function describeDagProblem(problem: DagProblem): string {
  switch (problem.kind) {
    case 'duplicate_task':
      return `duplicate task id "${problem.taskId}": task ids must be unique within a DAG`;
    case 'unknown_upstream':
      return `task "${problem.taskId}" lists unknown upstream "${problem.upstream}": declare that task or remove it from upstream`;
    case 'cycle':
      return `cycle ${problem.path.join(' -> ')}: remove one of these dependencies`;
    case 'unknown_activity':
      return `task "${problem.taskId}" runs activity "${problem.activity}", which no worker registers: register it or fix the name`;
    case 'invalid_option':
      return `${problem.taskId === undefined ? '' : `task "${problem.taskId}": `}${problem.option} ${problem.message}`;
  }
}

export class DagValidationError extends Error {
  override readonly name = 'DagValidationError';

  constructor(
    readonly dagId: string,
    readonly problems: readonly DagProblem[],
  ) {
    super(`DAG "${dagId}" is invalid:\n${problems.map((p) => `  - ${describeDagProblem(p)}`).join('\n')}`);
  }
}

/** Duplicate ids, unknown upstreams and cycles; every problem found, not just the first. */
export function findGraphProblems(tasks: readonly GraphTask[]): DagProblem[] {
  const problems: DagProblem[] = [];
  const seen = new Set<string>();
  for (const task of tasks) {
    if (seen.has(task.id)) problems.push({ kind: 'duplicate_task', taskId: task.id });
    seen.add(task.id);
  }
  for (const task of tasks) {
    for (const up of task.upstream ?? []) {
      if (!seen.has(up)) problems.push({ kind: 'unknown_upstream', taskId: task.id, upstream: up });
    }
  }
  const cycle = findCycle(tasks);
  if (cycle !== undefined) problems.push({ kind: 'cycle', path: cycle });
  return problems;
}

export function findUnknownActivities(
  tasks: readonly { readonly id: string; readonly activity: string }[],
  registeredActivities: Iterable<string>,
): DagProblem[] {
  const registered = new Set(registeredActivities);
  return tasks.filter((t) => !registered.has(t.activity)).map((t) => ({ kind: 'unknown_activity', taskId: t.id, activity: t.activity }));
}

/**
 * One cycle as a closed path (`a -> b -> a`), following upstream edges in reverse so the path
 * reads in execution order. Unknown upstreams are ignored; they are reported separately.
 */
export function findCycle(tasks: readonly GraphTask[]): string[] | undefined {
  const upstreamOf = new Map<string, readonly string[]>();
  for (const t of tasks) if (!upstreamOf.has(t.id)) upstreamOf.set(t.id, t.upstream ?? []);

  const downstreamOf = new Map<string, string[]>();
  for (const [id, ups] of upstreamOf) {
    for (const up of ups) {
      if (!upstreamOf.has(up)) continue;
      const list = downstreamOf.get(up);
      if (list === undefined) downstreamOf.set(up, [id]);
      else list.push(id);
    }
  }

  const WHITE = 0;
  const GREY = 1;
  const BLACK = 2;
  const color = new Map<string, number>();
  // Iterative DFS: a 1,000-task chain must not depend on the JS stack depth.
  for (const root of upstreamOf.keys()) {
    if ((color.get(root) ?? WHITE) !== WHITE) continue;
    const path: string[] = [root];
    const nextChild: number[] = [0];
    color.set(root, GREY);
    while (path.length > 0) {
      const top = path.length - 1;
      const node = path[top] as string;
      const children = downstreamOf.get(node) ?? [];
      const i = nextChild[top] as number;
      if (i >= children.length) {
        color.set(node, BLACK);
        path.pop();
        nextChild.pop();
        continue;
      }
      nextChild[top] = i + 1;
      const child = children[i] as string;
      const c = color.get(child) ?? WHITE;
      if (c === GREY) return [...path.slice(path.indexOf(child)), child];
      if (c === WHITE) {
        color.set(child, GREY);
        path.push(child);
        nextChild.push(0);
      }
    }
  }
  return undefined;
}

/** Index-based adjacency, so the runner does O(out-degree) work per finished task. */
export interface DagGraph {
  /** Task ids in declaration order; a task's index is its position here. */
  readonly ids: readonly string[];
  readonly indexOf: ReadonlyMap<string, number>;
  /** Distinct upstream indices per task. */
  readonly upstream: readonly (readonly number[])[];
  readonly downstream: readonly (readonly number[])[];
}

/** Throws DagValidationError when the graph is not a DAG. */
export function buildDagGraph(tasks: readonly GraphTask[], dagId = '(unnamed)'): DagGraph {
  const problems = findGraphProblems(tasks);
  if (problems.length > 0) throw new DagValidationError(dagId, problems);

  const ids = tasks.map((t) => t.id);
  const indexOf = new Map<string, number>();
  ids.forEach((id, i) => indexOf.set(id, i));
  const upstream: number[][] = [];
  const downstream: number[][] = ids.map(() => []);
  tasks.forEach((task, i) => {
    const ups = [...new Set(task.upstream ?? [])].map((u) => indexOf.get(u) as number);
    upstream.push(ups);
    for (const u of ups) (downstream[u] as number[]).push(i);
  });
  return { ids, indexOf, upstream, downstream };
}

/** Kahn's algorithm, ties broken by declaration order so the result is stable. */
export function topologicalOrder(tasks: readonly GraphTask[]): string[] {
  return topologicalLevels(tasks).flat();
}

/**
 * Tasks grouped by depth: level 0 has no upstream, level n depends on at least one task of
 * level n-1. Tasks within one level can run in parallel.
 */
export function topologicalLevels(tasks: readonly GraphTask[]): string[][] {
  const graph = buildDagGraph(tasks);
  const remaining = graph.upstream.map((u) => u.length);
  let current: number[] = [];
  remaining.forEach((n, i) => {
    if (n === 0) current.push(i);
  });
  const levels: string[][] = [];
  while (current.length > 0) {
    levels.push(current.map((i) => graph.ids[i] as string));
    const next: number[] = [];
    for (const i of current) {
      for (const d of graph.downstream[i] as readonly number[]) {
        const left = (remaining[d] as number) - 1;
        remaining[d] = left;
        if (left === 0) next.push(d);
      }
    }
    next.sort((a, b) => a - b);
    current = next;
  }
  return levels;
}

/** The given tasks and everything downstream of them. */
export function downstreamClosure(graph: DagGraph, roots: Iterable<string>): Set<string> {
  const seen = new Set<number>();
  const stack: number[] = [];
  for (const id of roots) {
    const i = graph.indexOf.get(id);
    if (i !== undefined && !seen.has(i)) {
      seen.add(i);
      stack.push(i);
    }
  }
  while (stack.length > 0) {
    const i = stack.pop() as number;
    for (const d of graph.downstream[i] as readonly number[]) {
      if (!seen.has(d)) {
        seen.add(d);
        stack.push(d);
      }
    }
  }
  return new Set([...seen].map((i) => graph.ids[i] as string));
}
