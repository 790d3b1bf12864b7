/**
 * npm run elt:manifest: writes elt/sql-manifest.ts from the models under sql/. Run it after adding a
 * model, changing a ref() or a model's tests; the unit tests fail while it is stale.
 */
import { SQL_DIR, SQL_MANIFEST_FILE, loadSqlProject } from '../elt/load-project.js';
import { renderSqlManifestModule } from '../elt/manifest.js';
import { runGeneratedFileCli } from './lib/generated-file.js';

await runGeneratedFileCli({
  script: 'elt:manifest',
  description: 'Regenerate elt/sql-manifest.ts (the model graph workflow code reads) from the SQL models under sql/.',
  file: SQL_MANIFEST_FILE,
  render: () => renderSqlManifestModule(loadSqlProject(SQL_DIR)),
});
