/**
 * The import boundaries are a rule the lint enforces: each probe below is linted as if it were a
 * file in the named folder, with the project's own eslint.config.js.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ESLint } from 'eslint';
import { PROJECT_ROOT } from '../../core/config.js';

const eslint = new ESLint({ cwd: PROJECT_ROOT });

/** The rule ids of the errors linting `source` as `file` reports. */
async function errorsOf(file: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath: `${PROJECT_ROOT}/${file}` });
  return (result?.messages ?? []).filter((m) => m.severity === 2).map((m) => `${m.ruleId}: ${m.message}`);
}

const boundaryErrors = (errors: string[]) => errors.filter((e) => e.startsWith('boundaries/'));

test('api may import core and stores, not activities', async () => {
  assert.deepEqual(
    await errorsOf(
      'api/probe.ts',
      "import { createGcpClients } from '../stores/clients.js';\nimport { loadConfig } from '../core/config.js';\nexport const x = [createGcpClients, loadConfig];\n",
    ),
    [],
  );
  const errors = await errorsOf(
    'api/probe.ts',
    "import { createWarehouseActivities } from '../activities/warehouse.js';\nexport const x = createWarehouseActivities;\n",
  );
  assert.equal(boundaryErrors(errors).length, 1, errors.join('\n'));
  assert.match(errors[0] ?? '', /"api" to elements of type "activities"/);
});

test('core imports nothing of the project, even from a nested folder', async () => {
  const errors = await errorsOf(
    'core/segmentation/probe.ts',
    "import { dagRegistry } from '../../dags/index.js';\nexport const x = dagRegistry;\n",
  );
  assert.match(boundaryErrors(errors).join('\n'), /"core" to elements of type "dags"/);
});

test('activities may not import workflow code; stores may not import activities', async () => {
  assert.equal(
    boundaryErrors(
      await errorsOf(
        'activities/probe.ts',
        "import { RECLASSIFY_WORKFLOW } from '../workflows/reclassify-messages.js';\nexport const x = RECLASSIFY_WORKFLOW;\n",
      ),
    ).length,
    1,
  );
  assert.equal(
    boundaryErrors(
      await errorsOf('stores/probe.ts', "import { heartbeat } from '../activities/heartbeat.js';\nexport const x = heartbeat;\n"),
    ).length,
    1,
  );
});

test('workflow code takes activity types only, and no Node built-ins or file reads', async () => {
  const typesOnly = "import type { WarehouseActivities } from '../activities/warehouse.js';\nexport type X = WarehouseActivities;\n";
  assert.deepEqual(await errorsOf('workflows/probe.ts', typesOnly), []);
  const errors = await errorsOf(
    'workflows/probe.ts',
    "import { createWarehouseActivities } from '../activities/warehouse.js';\nimport { readFileSync } from 'node:fs';\nimport { loadSqlProject } from '../elt/load-project.js';\nexport const x = [createWarehouseActivities, readFileSync, loadSqlProject];\n",
  );
  assert.equal(boundaryErrors(errors).length, 1, errors.join('\n'));
  assert.equal(errors.filter((e) => e.startsWith('no-restricted-imports')).length, 2, errors.join('\n'));
});

test('tests and processes wire everything together', async () => {
  assert.deepEqual(
    boundaryErrors(
      await errorsOf(
        'test/workflows/probe.ts',
        "import { createWarehouseActivities } from '../../activities/warehouse.js';\nexport const x = createWarehouseActivities;\n",
      ),
    ),
    [],
  );
  assert.deepEqual(
    boundaryErrors(
      await errorsOf(
        'workers/probe.ts',
        "import { createWarehouseActivities } from '../activities/warehouse.js';\nexport const x = createWarehouseActivities;\n",
      ),
    ),
    [],
  );
});
