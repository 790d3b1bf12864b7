/**
 * The poke behind sensor tasks: one cheap check of a condition outside segflow, answered at once.
 * The waiting happens in the workflow (workflows/dag-sensor.ts), never here.
 */
import type { BigQuery } from '@google-cloud/bigquery';
import type { Storage } from '@google-cloud/storage';
import { ApplicationFailure } from '@temporalio/activity';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import {
  PARTITION_DAY,
  SENSOR_POKE_ACTIVITY,
  describeSensorCondition,
  type SensorCondition,
  type SensorPokeInput,
  type SensorPokeResult,
} from '../core/sensors.js';
import { qualifiedTable, quoteColumn } from '../elt/names.js';

export interface SensorDeps {
  storage: Storage;
  bigquery: BigQuery;
  config: Pick<Config, 'gcp' | 'lake' | 'warehouse'>;
  logger: Logger;
}

export function createSensorActivities(deps: SensorDeps) {
  const { storage, bigquery, config, logger } = deps;

  async function check(condition: SensorCondition): Promise<SensorPokeResult> {
    switch (condition.kind) {
      case 'gcs_object': {
        const bucket = condition.bucket ?? config.lake.bucket;
        const [exists] = await storage.bucket(bucket).file(condition.object).exists();
        return {
          met: exists,
          observed: exists ? `found gs://${bucket}/${condition.object}` : `no object gs://${bucket}/${condition.object}`,
        };
      }
      case 'gcs_prefix': {
        const bucket = condition.bucket ?? config.lake.bucket;
        const [files] = await storage.bucket(bucket).getFiles({ prefix: condition.prefix, maxResults: 1, autoPaginate: false });
        const first = files[0];
        return first === undefined
          ? { met: false, observed: `no object under gs://${bucket}/${condition.prefix}` }
          : { met: true, observed: `found gs://${bucket}/${first.name}` };
      }
      case 'bigquery_partition': {
        const datasets: Record<string, string> = config.warehouse;
        const dataset = datasets[condition.dataset] ?? condition.dataset;
        const table = qualifiedTable(config.gcp.projectId, dataset, condition.table);
        const floor = condition.minRows ?? 1;
        const day = PARTITION_DAY.test(condition.partition);
        // The partition column's filter prunes to the one partition, so the count reads only it.
        const column = quoteColumn(condition.column);
        const filter = day ? `DATE(${column}) = DATE(@partition)` : `TIMESTAMP_TRUNC(${column}, HOUR) = TIMESTAMP(@partition)`;
        const partition = day ? condition.partition : `${condition.partition}:00:00Z`;
        let rows: number;
        try {
          const [result] = await bigquery.query({
            query: `SELECT COUNT(*) AS n FROM ${table} WHERE ${filter}`,
            params: { partition },
            location: config.gcp.location,
          });
          rows = Number((result[0] as { n?: unknown } | undefined)?.n ?? 0);
        } catch (err) {
          // A table that does not exist yet is an unmet condition, not a failed poke.
          if ((err as { code?: unknown }).code === 404 || /not found/i.test(String((err as Error).message))) {
            return { met: false, observed: `table ${dataset}.${condition.table} does not exist` };
          }
          throw err;
        }
        return { met: rows >= floor, observed: `${rows} row${rows === 1 ? '' : 's'} in ${condition.partition} (floor ${floor})` };
      }
      default:
        throw ApplicationFailure.nonRetryable(`unknown sensor condition ${JSON.stringify(condition)}`, 'InvalidSensor');
    }
  }

  return {
    async [SENSOR_POKE_ACTIVITY](input: SensorPokeInput): Promise<SensorPokeResult> {
      const result = await check(input.condition);
      logger.debug(
        { dagId: input.dagId, taskId: input.taskId, poke: input.poke, condition: describeSensorCondition(input.condition), ...result },
        'sensor poked',
      );
      return result;
    },
  };
}
