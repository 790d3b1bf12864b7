/**
 * A sensor task inside runDag: poke, and while the condition is unmet sleep on a workflow timer
 * until the next poke. Each poke is a short activity, so between pokes no worker slot is held and
 * a worker restart costs nothing; the wait itself is durable workflow state.
 */
import { ApplicationFailure, log, proxyActivities, proxyLocalActivities, sleep } from '@temporalio/workflow';
import type { DagTaskInput } from '../core/dag-task.js';
import {
  SENSOR_TIMEOUT,
  describeSensorCondition,
  renderSensorCondition,
  sensorTimeoutMessage,
  type SensorPokeInput,
  type SensorPokeResult,
  type SensorProgress,
  type SensorSpec,
} from '../core/sensors.js';
import { formatInstant } from '../core/time.js';
import { durationToMs, type ResolvedTaskOptions } from '../dags/dsl.js';

type Poke = (input: SensorPokeInput) => Promise<SensorPokeResult>;

// A poke that errors (GCS or BigQuery briefly unreachable) is retried here; the task's own retry
// policy only sees a poke that failed for good.
const POKE_RETRY = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 3 } as const;

function pokeActivity(options: ResolvedTaskOptions, activityId: string): Poke {
  if (options.local) {
    return proxyLocalActivities({ startToCloseTimeout: options.startToCloseTimeoutMs, retry: POKE_RETRY })[options.activity] as Poke;
  }
  return proxyActivities({
    activityId,
    startToCloseTimeout: options.startToCloseTimeoutMs,
    retry: POKE_RETRY,
    ...(options.taskQueue === undefined ? {} : { taskQueue: options.taskQueue }),
  })[options.activity] as Poke;
}

/**
 * Pokes until the condition holds (resolves) or `timeout` after `firstStartedAt` has passed
 * (rejects with a non-retryable SensorTimeout naming the condition). `report` gets the progress
 * after every poke, for the runDag query.
 */
export async function runSensor(
  spec: SensorSpec,
  input: DagTaskInput,
  options: ResolvedTaskOptions,
  attemptTag: string,
  firstStartedAt: number,
  report: (progress: SensorProgress) => void,
): Promise<SensorPokeResult> {
  const condition = renderSensorCondition(spec.condition, input.interval);
  const described = describeSensorCondition(condition);
  const pokeMs = durationToMs(spec.pokeInterval);
  const timeoutAt = firstStartedAt + durationToMs(spec.timeout);
  let lastObserved: string | undefined;
  for (let poke = 1; ; poke++) {
    report({
      condition: described,
      pokes: poke - 1,
      ...(lastObserved === undefined ? {} : { lastObserved }),
      timeoutAt: formatInstant(timeoutAt),
    });
    const result = await pokeActivity(options, `${attemptTag}.poke${poke}`)({ ...input, condition, poke });
    lastObserved = result.observed;
    const base = { condition: described, pokes: poke, lastObserved, timeoutAt: formatInstant(timeoutAt) };
    if (result.met) {
      report(base);
      return result;
    }
    const now = Date.now();
    if (now >= timeoutAt) {
      report(base);
      log.warn('DAG sensor timed out', { dagId: input.dagId, taskId: input.taskId, condition: described, pokes: poke });
      throw ApplicationFailure.create({
        type: SENSOR_TIMEOUT,
        message: sensorTimeoutMessage(condition, spec.timeout, poke, lastObserved),
        nonRetryable: true,
      });
    }
    // The last wait is cut short so the final poke happens at the timeout, not up to an interval after it.
    const waitMs = Math.min(pokeMs, timeoutAt - now);
    report({ ...base, nextPokeAt: formatInstant(now + waitMs) });
    await sleep(waitMs);
  }
}
