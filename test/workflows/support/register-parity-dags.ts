/** Adds the parity example DAGs (and pools) to the registry of the process or bundle that loads it. */
import { registerDags } from '../../../dags/index.js';
import { parityDags } from './parity-dags.js';

registerDags(parityDags);
