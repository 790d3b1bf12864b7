/**
 * The validator every consumer of raw messages uses (ingestion, the trigger listener, the
 * quarantine replay): the contract built once from the configured extensions, the size and
 * clock-skew limits from the configuration.
 */
import type { Config } from './config.js';
import { describeContractExtensions } from './contract-extensions.js';
import { buildEventContract, validateMessage, type EventContract, type RawMessage, type ValidationResult } from './events.js';

export interface EventValidator {
  readonly contract: EventContract;
  /** The configured additions, one line each (empty: the contract as written). */
  readonly extensions: string[];
  validate(message: RawMessage, now?: Date): ValidationResult;
}

export function createEventValidator(
  ingest: Pick<Config['ingest'], 'maxEventBytes' | 'maxFutureSkewMs' | 'contractExtensions'>,
): EventValidator {
  const contract = buildEventContract(ingest.contractExtensions);
  return {
    contract,
    extensions: describeContractExtensions(ingest.contractExtensions),
    validate: (message, now = new Date()) =>
      validateMessage(message, { maxBytes: ingest.maxEventBytes, maxFutureSkewMs: ingest.maxFutureSkewMs, now, contract }),
  };
}
