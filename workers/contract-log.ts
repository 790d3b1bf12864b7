/** The startup record of the event contract in force: a configuration deploy that widens it shows in the logs. */
import type { Config } from '../core/config.js';
import { describeContractExtensions } from '../core/contract-extensions.js';
import type { Logger } from '../core/logger.js';

export function logContractExtensions(config: Pick<Config, 'ingest'>, logger: Logger): void {
  const additions = describeContractExtensions(config.ingest.contractExtensions);
  if (additions.length === 0) logger.info({ contractExtensions: [] }, 'event contract v1 as written (no configured extensions)');
  else logger.warn({ contractExtensions: additions }, `event contract v1 extended by configuration: ${additions.join('; ')}`);
}
