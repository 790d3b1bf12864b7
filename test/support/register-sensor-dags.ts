/** Adds the sensor example DAGs to the registry of the process or workflow bundle that loads this module. */
import { registerDags } from '../../dags/index.js';
import { sensorDags } from './sensor-dags.js';

registerDags(sensorDags);
