/**
 * npm run smoke — run the smoke workflow on a running worker and print what each service returned.
 */
import { Command } from 'commander';
import { randomUUID } from 'node:crypto';
import { loadConfigOrExit } from '../core/config.js';
import { workflowUiUrl } from '../core/temporal-connection.js';
import { exitUsage } from './lib/cli.js';
import { createTemporalClient } from '../workers/client.js';

new Command('npm run smoke')
  .description('Starts the smoke workflow (Pub/Sub, GCS, BigQuery, Firestore round trips) on a running worker and prints the result.')
  .showHelpAfterError()
  .exitOverride(exitUsage)
  .parse();
const config = loadConfigOrExit();
const client = await createTemporalClient(config);
const runId = randomUUID().slice(0, 8);
const workflowId = `smoke/${runId}`;
const handle = await client.workflow.start('smokeWorkflow', { taskQueue: config.temporal.taskQueue, workflowId, args: [runId] });
console.log(
  `started ${workflowId}: ${workflowUiUrl(config.temporal.uiUrl, config.temporal.namespace, workflowId, handle.firstExecutionRunId)}`,
);
console.log(JSON.stringify(await handle.result(), null, 2));
await client.connection.close();
