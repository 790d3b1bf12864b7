/**
 * Every production DAG the runDag workflow can run, by id. Imported by workflow code, so DAG
 * modules registered here must stay pure data.
 *
 * Test and benchmark harnesses add their own DAGs with `registerDags` from a module they load both
 * in Node and in the workflow sandbox (workers/worker.ts `dagModules`), so a production worker
 * never carries them.
 */
import { findAssetProblems } from './assets.js';
import { createDagRegistry, type DagDefinition } from './dsl.js';
import { hourlyPipeline } from './hourly-pipeline.js';
import { nightlySegmentation } from './nightly-segmentation.js';

const registry = new Map(createDagRegistry([hourlyPipeline, nightlySegmentation]));
assertAssetsConsistent([...registry.values()]);

export const dagRegistry: ReadonlyMap<string, DagDefinition> = registry;

/** Adds DAGs to this process's (or this workflow bundle's) registry; registering the same definition twice is a no-op. */
export function registerDags(dags: readonly DagDefinition[]): void {
  for (const dag of dags) {
    const existing = registry.get(dag.id);
    if (existing === dag) continue;
    if (existing !== undefined) throw new Error(`Two DAGs are defined with id "${dag.id}"; DAG ids must be unique.`);
    registry.set(dag.id, dag);
  }
  assertAssetsConsistent([...registry.values()]);
}

function assertAssetsConsistent(dags: readonly DagDefinition[]): void {
  const problems = findAssetProblems(dags);
  if (problems.length > 0) throw new Error(`Data-triggered DAGs do not fit together:\n- ${problems.join('\n- ')}`);
}
