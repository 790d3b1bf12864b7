/** Adds the benchmark DAGs to the registry of the process or workflow bundle that loads this module. */
import { registerDags } from '../dags/index.js';
import { benchDags } from './dags.js';

registerDags(benchDags);
