/** Every workflow the workers register: the bundle entry for `workflowsPath`. */
export { runDag } from './run-dag.js';
export { scheduledDagRun } from './scheduled-dag-run.js';
export { smokeWorkflow } from './smoke.js';
export { ingestEvents } from './ingest-events.js';
export { reclassifyCustomer } from './reclassify-customer.js';
export { replayQuarantine } from './replay-quarantine.js';
export { forgetCustomers } from './forget-customers.js';
export { assetTracker } from './asset-tracker.js';
