/**
 * Reads the SQL models from disk: every `<model>.sql` under `sql/` (one folder per dataset,
 * `sql/staging/` and `sql/marts/`), with `<model>.tests.json` beside it, validated as a project.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../core/config.js';
import { LOGICAL_DATASETS, SqlProjectError } from './names.js';
import { buildSqlProject, parseSqlModel, type SqlModel, type SqlProject } from './project.js';

export const SQL_DIR = path.join(PROJECT_ROOT, 'sql');
/** The generated model graph (`npm run elt:manifest`). */
export const SQL_MANIFEST_FILE = path.join(PROJECT_ROOT, 'elt', 'sql-manifest.ts');

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]))
    .sort();
}

export function loadSqlProject(dir: string = SQL_DIR): SqlProject {
  if (!existsSync(dir)) throw new Error(`SQL model folder ${dir} does not exist; expected one .sql file per model there`);
  const files = filesUnder(dir);
  const testFiles = new Set(files.filter((f) => f.endsWith('.tests.json')));
  const problems: string[] = [];
  const models: SqlModel[] = files
    .filter((f) => f.endsWith('.sql'))
    .map((file) => {
      const name = path.basename(file, '.sql');
      const testsFile = file.replace(/\.sql$/, '.tests.json');
      testFiles.delete(testsFile);
      const tests = existsSync(testsFile) ? readFileSync(testsFile, 'utf8') : undefined;
      const model = parseSqlModel({ name, sql: readFileSync(file, 'utf8'), ...(tests === undefined ? {} : { tests }) });
      // A model in a dataset's folder builds a table of that dataset, so the tree reads like the warehouse.
      const folder = path.basename(path.dirname(file));
      if ((LOGICAL_DATASETS as readonly string[]).includes(folder) && folder !== model.config.dataset) {
        problems.push(
          `model ${name} is in sql/${folder}/ but its config says dataset=${model.config.dataset}; move the file or fix the config`,
        );
      }
      return model;
    });
  if (testFiles.size > 0) {
    const names = [...testFiles].map((f) => path.relative(dir, f));
    problems.push(`data tests without a model: ${names.join(', ')}; name them <model>.tests.json beside an existing <model>.sql`);
  }
  if (problems.length > 0) throw new SqlProjectError(problems);
  return buildSqlProject(models);
}
