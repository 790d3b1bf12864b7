/** The production workflows with the example DAGs registered: a workflow bundle entry for tests. */
import './register-example-dags.js';

export * from '../../workflows/index.js';
