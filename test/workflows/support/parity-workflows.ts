/** The production workflows with the example and parity DAGs registered: a workflow bundle entry. */
import '../../support/register-example-dags.js';
import './register-parity-dags.js';
import '../../support/register-sensor-dags.js';

export * from '../../../workflows/index.js';
