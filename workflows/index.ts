/** Every workflow the workers register: the bundle entry for `workflowsPath`. */
export { runDag } from './runDag.js';
export { smokeWorkflow } from './smoke.js';
export { ingestEvents } from './ingestEvents.js';
