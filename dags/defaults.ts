/** Task defaults shared by the production DAGs, set once as in an Airflow DAG's default_args. */
import type { DefaultTaskOptions } from './dsl.js';

/** Three attempts, 30 s to 10 min apart, 30 min each; errors of the given types are not retried. */
export function productionTaskDefaults(nonRetryableErrorTypes: readonly string[]): DefaultTaskOptions {
  return {
    retry: { initialInterval: '30s', backoffCoefficient: 2, maximumInterval: '10m', maximumAttempts: 3, nonRetryableErrorTypes },
    startToCloseTimeout: '30m',
  };
}
