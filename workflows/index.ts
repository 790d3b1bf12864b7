/** Every workflow the workers register: the bundle entry for `workflowsPath`. */
export { runDag } from './runDag.js';
export { scheduledDagRun } from './scheduledDagRun.js';
export { smokeWorkflow } from './smoke.js';
export { ingestEvents } from './ingestEvents.js';
export { reclassifyCustomer } from './reclassifyCustomer.js';
