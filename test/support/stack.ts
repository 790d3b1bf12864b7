/**
 * Integration-test support: configuration for the running local stack with a
 * task queue of the test's own, a worker in this process, and a Temporal client.
 */
import type { Client } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import type { Config } from '../../core/config.js';
import { loadSegflowConfig } from '../../workers/segmentation-config.js';
import { createLogger, type Logger } from '../../core/logger.js';
import { createTemporalClient } from '../../workers/client.js';
import { startWorker, type RunningWorker, type StartWorkerOptions } from '../../workers/worker.js';

export function testConfig(name: string, overrides: Record<string, string> = {}): Config {
  return loadSegflowConfig({
    ...process.env,
    ...overrides,
    TEMPORAL_TASK_QUEUE: `test-${name}-${randomUUID().slice(0, 8)}`,
    SEGFLOW_METRICS_PORT: '0',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'error',
    ...overrides,
  });
}

export interface IntegrationHarness {
  config: Config;
  logger: Logger;
  client: Client;
  worker: RunningWorker;
  close(): Promise<void>;
}

export async function startHarness(
  name: string,
  opts: { env?: Record<string, string>; worker?: StartWorkerOptions } = {},
): Promise<IntegrationHarness> {
  const config = testConfig(name, opts.env);
  const logger = createLogger({ level: config.log.level, name: `test-${name}` });
  const worker = await startWorker(config, logger, opts.worker);
  const client = await createTemporalClient(config);
  return {
    config,
    logger,
    client,
    worker,
    async close() {
      await worker.shutdown();
      await client.connection.close();
    },
  };
}
