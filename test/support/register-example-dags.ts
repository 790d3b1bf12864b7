/** Adds the example DAGs to the registry of the process or workflow bundle that loads this module. */
import { registerDags } from '../../dags/index.js';
import { exampleDags } from './example-dags.js';

registerDags(exampleDags);
