/**
 * Models and the project graph: a model parsed from its file, the set of models validated as a
 * whole (refs, cycles, duplicate tables), and a model's SQL rendered for a warehouse target.
 */
import { findCycle, topologicalOrder } from '../core/dag-graph.js';
import { type DataTest, parseDataTests } from './data-tests.js';
import { type ModelConfig, parseModelConfig } from './model-config.js';
import { MODEL_NAME, SqlModelError, SqlProjectError, qualifiedTable, type LogicalDataset, type WarehouseTarget } from './names.js';
import { TAG, parseTag, templateCalls, type SourceRef } from './templating.js';

export interface SqlModel {
  readonly name: string;
  /** The file text, header included (comments are valid SQL). */
  readonly sql: string;
  readonly config: ModelConfig;
  /** Models this one reads, in first-use order, without duplicates. */
  readonly refs: readonly string[];
  readonly sources: readonly SourceRef[];
  readonly tests: readonly DataTest[];
}

export interface SqlModelFile {
  readonly name: string;
  readonly sql: string;
  /** Contents of `<name>.tests.json`, if the model has one. */
  readonly tests?: string;
}

export function parseSqlModel(file: SqlModelFile): SqlModel {
  if (!MODEL_NAME.test(file.name)) {
    throw new SqlModelError(
      `model file ${JSON.stringify(file.name)}: expected a lowercase name (letters, digits, underscores) such as fct_orders`,
    );
  }
  const config = parseModelConfig(file.name, file.sql);
  const calls = templateCalls(file.name, file.sql);
  const refs = [...new Set(calls.flatMap((c) => (c.kind === 'ref' ? [c.model] : [])))];
  const sourceKeys = new Set<string>();
  const sources: SourceRef[] = [];
  for (const c of calls) {
    if (c.kind !== 'source' || sourceKeys.has(`${c.dataset}.${c.table}`)) continue;
    sourceKeys.add(`${c.dataset}.${c.table}`);
    sources.push({ dataset: c.dataset, table: c.table });
  }
  const tests = file.tests === undefined ? [] : parseDataTests(file.name, file.tests);
  return { name: file.name, sql: file.sql, config, refs, sources, tests };
}

export interface SqlProject {
  /** Models in dependency order (a model after every model it refs), ties by name. */
  readonly models: readonly SqlModel[];
  readonly byName: ReadonlyMap<string, SqlModel>;
}

/** The table a model builds. */
export function modelTable(model: Pick<SqlModel, 'name' | 'config'>): { dataset: LogicalDataset; table: string } {
  return { dataset: model.config.dataset, table: model.config.alias ?? model.name };
}

/**
 * Validates a set of models as a whole: duplicate names or tables, refs to unknown models,
 * self-references and cycles. Throws SqlProjectError naming every problem.
 */
export function buildSqlProject(models: readonly SqlModel[]): SqlProject {
  const problems: string[] = [];
  const byName = new Map<string, SqlModel>();
  const tables = new Map<string, string>();
  for (const m of [...models].sort((a, b) => a.name.localeCompare(b.name))) {
    if (byName.has(m.name)) {
      problems.push(`model ${m.name} is defined twice`);
      continue;
    }
    byName.set(m.name, m);
    const { dataset, table } = modelTable(m);
    const owner = tables.get(`${dataset}.${table}`);
    if (owner !== undefined) problems.push(`models ${owner} and ${m.name} both build ${dataset}.${table}`);
    tables.set(`${dataset}.${table}`, m.name);
  }
  for (const m of byName.values()) {
    for (const r of m.refs) {
      if (r === m.name) problems.push(`model ${m.name} refs itself`);
      else if (!byName.has(r)) problems.push(`model ${m.name} refs unknown model "${r}"; add sql/<dataset>/${r}.sql or fix the ref`);
    }
    for (const s of m.sources) {
      const built = tables.get(`${s.dataset}.${s.table}`);
      if (built !== undefined)
        problems.push(`model ${m.name} reads source('${s.dataset}', '${s.table}'), which model ${built} builds; use ref('${built}')`);
    }
  }
  const nodes = [...byName.values()].map((m) => ({ id: m.name, upstream: m.refs.filter((r) => r !== m.name && byName.has(r)) }));
  const cycle = findCycle(nodes);
  // findCycle reads in execution order; reversed, each model is followed by one it refs.
  if (cycle !== undefined)
    problems.push(`models ref each other in a cycle: ${[...cycle].reverse().join(' refs ')}; remove one of these refs`);
  if (problems.length > 0) throw new SqlProjectError(problems);
  const order = topologicalOrder(nodes);
  return { models: order.map((name) => byName.get(name) as SqlModel), byName };
}

/**
 * The model's SQL with every ref()/source() replaced by `` `project.dataset.table` ``.
 * Nothing else changes: parameters stay `@interval_start` / `@interval_end`.
 */
export function renderModelSql(project: SqlProject, name: string, target: WarehouseTarget): string {
  const model = project.byName.get(name);
  if (model === undefined) throw new SqlModelError(`unknown model "${name}"; known models: ${[...project.byName.keys()].join(', ')}`);
  return model.sql.replace(TAG, (_whole, body: string) => {
    const call = parseTag(name, body);
    if (call.kind === 'source') return qualifiedTable(target.projectId, target.datasets[call.dataset], call.table);
    const ref = project.byName.get(call.model);
    if (ref === undefined) throw new SqlModelError(`model ${name} refs unknown model "${call.model}"`);
    const { dataset, table } = modelTable(ref);
    return qualifiedTable(target.projectId, target.datasets[dataset], table);
  });
}

/** The fully-qualified table a model builds. */
export function modelTableRef(model: Pick<SqlModel, 'name' | 'config'>, target: WarehouseTarget): string {
  const { dataset, table } = modelTable(model);
  return qualifiedTable(target.projectId, target.datasets[dataset], table);
}
