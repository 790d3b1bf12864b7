/** A Temporal client from the configuration, for the CLI, the API, tests, scripts and the trigger listener. */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Config } from '../core/config.js';
import { temporalConnectionSettings } from '../core/temporal-connection.js';

export interface TemporalClientOptions {
  /**
   * Connect through the SDK's Rust core, as workers do, instead of grpc-js: it spends less CPU
   * per call, which matters on a hot path such as the trigger listener's call per event. It runs
   * on the process's Temporal runtime: install it first (workers/runtime.ts) for core's log
   * lines to go to the logger.
   */
  native?: boolean;
}

export async function createTemporalClient(config: Config, options: TemporalClientOptions = {}): Promise<Client> {
  const settings = temporalConnectionSettings(config);
  const connection = options.native ? await NativeConnection.connect(settings) : await Connection.connect(settings);
  return new Client({ connection, namespace: config.temporal.namespace });
}
