/** DAG tasks built from the model graph: one task per model, one data-test task per tested model. */
import { DATA_TEST_ACTIVITY, SqlModelError } from './names.js';

/** What the DAG needs to know about a model; `SqlModel` and the generated manifest both fit. */
export interface SqlModelNode {
  readonly name: string;
  readonly refs: readonly string[];
}

export interface SqlModelTaskSpec {
  id: string;
  run: { sqlModel: string };
  upstream: string[];
}

export interface DataTestTaskSpec {
  id: string;
  run: { activity: string; args: { model: string } };
  upstream: string[];
}

/**
 * One DAG task per model (task id = model name), upstream from ref(). Models without refs read
 * only sources, so they wait for `rootUpstream` (e.g. the task loading the raw data).
 */
export function sqlModelTasks(models: readonly SqlModelNode[], options: { rootUpstream?: readonly string[] } = {}): SqlModelTaskSpec[] {
  const names = new Set(models.map((m) => m.name));
  return models.map((m) => {
    const unknown = m.refs.filter((r) => !names.has(r));
    if (unknown.length > 0)
      throw new SqlModelError(
        `model ${m.name} refs ${unknown.join(', ')}, which ${unknown.length === 1 ? 'is' : 'are'} not among the models given`,
      );
    return { id: m.name, run: { sqlModel: m.name }, upstream: m.refs.length > 0 ? [...m.refs] : [...(options.rootUpstream ?? [])] };
  });
}

export function dataTestTaskId(model: string): string {
  return `test_${model}`;
}

/** One task per model that has data tests: `test_<model>`, after the model. */
export function dataTestTasks(models: readonly (SqlModelNode & { readonly tests: readonly unknown[] })[]): DataTestTaskSpec[] {
  return models
    .filter((m) => m.tests.length > 0)
    .map((m) => ({ id: dataTestTaskId(m.name), run: { activity: DATA_TEST_ACTIVITY, args: { model: m.name } }, upstream: [m.name] }));
}
