/**
 * Writes sql/manifest.ts from the .sql and .tests.json files: `npx tsx sql/build-manifest.ts`.
 * Run it after adding a model, changing a ref() or a model's tests; the unit tests fail
 * while the manifest is out of date.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadSqlProject, SQL_DIR } from '../activities/warehouse.js';
import { renderSqlManifestModule } from '../core/sql-models.js';

const file = path.join(SQL_DIR, 'manifest.ts');
writeFileSync(file, renderSqlManifestModule(loadSqlProject(SQL_DIR)));
console.log(`wrote ${path.relative(process.cwd(), file)}`);
