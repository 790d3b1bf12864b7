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

/**
 * Query strings carry credentials often enough (`?access_token=`, `?sig=`): a logged URL keeps
 * its path and parameter names, never parameter values. No segflow route takes a query.
 */
export function redactUrlQuery(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const names = url
    .slice(q + 1)
    .split('&')
    .map((pair) => pair.split('=', 1)[0] ?? '')
    .map((name) => `${name.slice(0, 64)}=[redacted]`);
  return `${url.slice(0, q)}?${names.join('&')}`;
}

/**
 * Text from outside (an HTTP answer, an error) with every known secret cut out, for messages that
 * reach logs, alerts and workflow histories. Short values are left alone: they match too much.
 */
export function scrubSecrets(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret === undefined || secret.length < 8) continue;
    for (const form of new Set([secret, encodeURIComponent(secret), encodeURI(secret)])) out = out.split(form).join('[redacted]');
  }
  return out;
}

/** The URL paths pino's request serializers produce (fastify's `req.url`). */
const URL_PATHS = ['req.url', 'request.url'];

function censor(value: unknown, path: readonly unknown[]): unknown {
  const where = path.slice(-2).map(String).join('.');
  return URL_PATHS.includes(where) && typeof value === 'string' ? redactUrlQuery(value) : '[redacted]';
}

export interface LoggerSettings {
  level: LoggerOptions['level'];
  name?: string;
}

export function createLogger(settings: LoggerSettings, destination?: pino.DestinationStream): Logger {
  const options: LoggerOptions = {
    name: settings.name ?? 'segflow',
    level: settings.level ?? 'info',
    redact: { paths: [...REDACT_PATHS, ...URL_PATHS], censor },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}
