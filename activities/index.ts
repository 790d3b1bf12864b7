/**
 * Every activity the worker registers, built from injected dependencies so tests
 * can hand in emulator clients or small fakes.
 */
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { GcpClients } from './clients.js';
import { createSmokeActivities } from './smoke.js';

export interface ActivityDeps {
  config: Config;
  clients: GcpClients;
  logger: Logger;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createSmokeActivities({ clients: deps.clients, bucket: deps.config.lake.bucket }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
