/**
 * Data-triggered runs, the pure part: which DAGs need what a producer run wrote, which interval of
 * theirs it falls in, and which producer partitions that interval needs. A partition of an asset is
 * the data interval of the run that wrote it, named by its start (`2026-11-26T09:00:00Z`).
 */
import { formatInstant } from '../core/time.js';
import type { DataInterval } from '../core/dag-task.js';
import { INTERVAL_PERIOD_MS, type DagDefinition } from './dsl.js';

/** A dependent DAG interval one landed producer partition counts towards. */
export interface AssetTarget {
  readonly dagId: string;
  readonly interval: DataInterval;
  /** The assets of the dependent's trigger this producer DAG writes. */
  readonly assets: readonly string[];
}

/** The DAG that produces `asset` (validated to be at most one), if any. */
export function producerOf(dags: Iterable<DagDefinition>, asset: string): DagDefinition | undefined {
  for (const dag of dags) if (dag.produces?.includes(asset)) return dag;
  return undefined;
}

/** The interval of a `dependent` DAG that contains the instant `ms` (UTC-aligned, as runs are). */
export function intervalContaining(dependent: DagDefinition, ms: number): DataInterval {
  const period = INTERVAL_PERIOD_MS[dependent.interval];
  const start = ms - (((ms % period) + period) % period);
  return { start: formatInstant(start), end: formatInstant(start + period) };
}

/** The dependent intervals a successful run of `producer` over `interval` counts towards. */
export function assetTargets(dags: Iterable<DagDefinition>, producer: DagDefinition, interval: DataInterval): AssetTarget[] {
  const produced = producer.produces ?? [];
  if (produced.length === 0) return [];
  const targets: AssetTarget[] = [];
  for (const dag of dags) {
    const assets = dag.triggeredBy?.assets.filter((a) => produced.includes(a)) ?? [];
    if (assets.length > 0) targets.push({ dagId: dag.id, interval: intervalContaining(dag, Date.parse(interval.start)), assets });
  }
  return targets;
}

/** Per needed asset, the starts of the producer partitions that `interval` of `dependent` needs. */
export function neededPartitions(dags: Iterable<DagDefinition>, dependent: DagDefinition, interval: DataInterval): Map<string, string[]> {
  const all = [...dags];
  const needed = new Map<string, string[]>();
  for (const asset of dependent.triggeredBy?.assets ?? []) {
    const producer = producerOf(all, asset);
    if (producer === undefined) throw new Error(`No DAG produces "${asset}", which ${dependent.id} needs; add it to a DAG's produces.`);
    const period = INTERVAL_PERIOD_MS[producer.interval];
    const starts: string[] = [];
    for (let t = Date.parse(interval.start); t < Date.parse(interval.end); t += period) starts.push(formatInstant(t));
    needed.set(asset, starts);
  }
  return needed;
}

/**
 * Problems across DAGs: an asset with two producers, a needed asset no DAG produces, a producer
 * whose intervals do not tile the dependent's (an hourly producer fits a daily dependent, not the
 * reverse).
 */
export function findAssetProblems(dags: readonly DagDefinition[]): string[] {
  const problems: string[] = [];
  const producers = new Map<string, string[]>();
  for (const dag of dags) for (const asset of dag.produces ?? []) producers.set(asset, [...(producers.get(asset) ?? []), dag.id]);
  for (const [asset, ids] of producers) {
    if (ids.length > 1) problems.push(`asset "${asset}" is produced by ${ids.join(' and ')}; one DAG may produce an asset`);
  }
  for (const dag of dags) {
    for (const asset of dag.triggeredBy?.assets ?? []) {
      const producer = producerOf(dags, asset);
      if (producer === undefined) {
        problems.push(`${dag.id} is triggered by "${asset}", which no DAG produces`);
        continue;
      }
      if (INTERVAL_PERIOD_MS[dag.interval] % INTERVAL_PERIOD_MS[producer.interval] !== 0) {
        problems.push(
          `${dag.id} (${dag.interval}) cannot be triggered by ${producer.id} (${producer.interval}): its interval must be a whole number of the producer's`,
        );
      }
    }
  }
  return problems;
}
