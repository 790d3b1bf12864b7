/** A Temporal client from the configuration, for the CLI, the API, tests and scripts. */
import { Client, Connection } from '@temporalio/client';
import type { Config } from '../core/config.js';
import { temporalConnectionSettings } from '../core/temporal-connection.js';

export async function createTemporalClient(config: Config): Promise<Client> {
  const connection = await Connection.connect(temporalConnectionSettings(config));
  return new Client({ connection, namespace: config.temporal.namespace });
}
