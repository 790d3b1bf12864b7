/** The manifest: the model graph as data, generated into `elt/sql-manifest.ts` for workflow code, which cannot read files. */
import type { ModelConfig } from './model-config.js';
import type { LogicalDataset } from './names.js';
import { modelTable, type SqlProject } from './project.js';

export interface SqlManifestModel {
  readonly name: string;
  readonly dataset: LogicalDataset;
  readonly table: string;
  readonly materialized: ModelConfig['materialized'];
  readonly refs: readonly string[];
  readonly sources: readonly string[];
  readonly tests: readonly { readonly name: string; readonly severity: 'error' | 'warn' }[];
}

export function sqlManifest(project: SqlProject): SqlManifestModel[] {
  return project.models.map((m) => ({
    name: m.name,
    ...modelTable(m),
    materialized: m.config.materialized,
    refs: [...m.refs],
    sources: m.sources.map((s) => `${s.dataset}.${s.table}`),
    tests: m.tests.map((t) => ({ name: t.name, severity: t.severity })),
  }));
}

/** Source of `elt/sql-manifest.ts`: the graph as data, so workflow code (DAGs) knows it without reading files. */
export function renderSqlManifestModule(project: SqlProject): string {
  return [
    '/**',
    ' * GENERATED from the .sql and .tests.json files under sql/ by `npm run elt:manifest`;',
    ' * do not edit. test/unit/sql-models.test.ts fails when it is out of date. DAG definitions import',
    ' * it because workflow code cannot read files.',
    ' */',
    "import type { SqlManifestModel } from './manifest.js';",
    '',
    'export const SQL_MANIFEST: readonly SqlManifestModel[] = [',
    ...sqlManifest(project).map((m) =>
      [
        '  {',
        ...Object.entries(m).map(([key, value]) =>
          key === 'tests'
            ? `    tests: [\n${(value as SqlManifestModel['tests']).map((t) => `      ${JSON.stringify(t)},\n`).join('')}    ],`
            : `    ${key}: ${JSON.stringify(value)},`,
        ),
        '  },',
      ].join('\n'),
    ),
    '];',
    '',
  ].join('\n');
}
