/**
 * pino, configured once. Secrets are removed by path configuration rather than
 * by every caller remembering to leave them out.
 */
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/** Field names that never reach a log line, wherever they sit (up to two levels deep). */
const SECRET_KEYS = [
  'authorization',
  'Authorization',
  'token',
  'apiKey',
  'api_key',
  'secret',
  'password',
  'signature',
  'TEMPORAL_API_KEY',
  'SEGFLOW_API_TOKENS',
];

export const REDACT_PATHS = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
  ...SECRET_KEYS.map((k) => `*.*.${k}`),
  'headers.authorization',
  'req.headers.authorization',
  'req.headers["segflow-signature"]',
  'headers["segflow-signature"]',
];

export interface LoggerSettings {
  level: LoggerOptions['level'];
  name?: string;
}

export function createLogger(settings: LoggerSettings, destination?: pino.DestinationStream): Logger {
  const options: LoggerOptions = {
    name: settings.name ?? 'segflow',
    level: settings.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}
