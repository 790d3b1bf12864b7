/**
 * `npm run elt:manifest`: writes elt/sql-manifest.ts from the models under sql/. Run it after
 * adding a model, changing a ref() or a model's tests; the unit tests fail while it is stale.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { SQL_DIR, SQL_MANIFEST_FILE, loadSqlProject } from '../elt/load-project.js';
import { renderSqlManifestModule } from '../elt/manifest.js';

new Command('elt:manifest')
  .description('Regenerate elt/sql-manifest.ts (the model graph workflow code reads) from the SQL models under sql/.')
  .action(() => {
    writeFileSync(SQL_MANIFEST_FILE, renderSqlManifestModule(loadSqlProject(SQL_DIR)));
    console.log(`wrote ${path.relative(process.cwd(), SQL_MANIFEST_FILE)}`);
  })
  .parse();
