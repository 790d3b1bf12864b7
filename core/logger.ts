/**
 * pino, configured once. Secrets are removed by path configuration rather than
 * by every caller remembering to leave them out.
 */
import { mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { pino, type Level, type Logger, type LoggerOptions } from 'pino';
import { prettyFactory } from 'pino-pretty';

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
  'salt',
  'SEGFLOW_PRIVACY_SALT',
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
  /**
   * For a person at a terminal: `level` and above as one readable line per event on the
   * destination, and every line at `fileLevel` and above, as JSON, in `file`.
   */
  pretty?: { file: string; fileLevel: Level | 'silent' };
}

export type LogFormat = 'pretty' | 'json';

/** `auto` is readable for a person at a terminal and JSON for machines: a pipe, a file, CI. */
export function resolveLogFormat(setting: LogFormat | 'auto', terminal: { isTTY: boolean; ci: boolean }): LogFormat {
  if (setting !== 'auto') return setting;
  return terminal.isTTY && !terminal.ci ? 'pretty' : 'json';
}

export function createLogger(settings: LoggerSettings, destination?: pino.DestinationStream): Logger {
  const level = settings.level ?? 'info';
  const options: LoggerOptions = {
    name: settings.name ?? 'segflow',
    level,
    redact: { paths: [...REDACT_PATHS, ...URL_PATHS], censor },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  if (settings.pretty !== undefined) {
    const { file, fileLevel } = settings.pretty;
    const rank = (l: string) => pino.levels.values[l] ?? Number.POSITIVE_INFINITY;
    // Redaction runs before serialization, so both streams get the redacted line.
    const streams: { level: Level; stream: pino.DestinationStream }[] = [];
    if (level !== 'silent') {
      const showTaskDetail = rank(level) <= rank('debug');
      streams.push({ level: level as Level, stream: readableStream(destination ?? process.stdout, showTaskDetail) });
    }
    if (fileLevel !== 'silent') {
      // Opened here rather than by pino, so the file is ready (and flushed on exit) from the first line.
      mkdirSync(path.dirname(file), { recursive: true });
      streams.push({ level: fileLevel, stream: pino.destination({ fd: openSync(file, 'a'), sync: false }) });
    }
    const lowest = streams.map((s) => s.level).reduce<string>((min, l) => (rank(l) < rank(min) ? l : min), 'silent');
    return pino({ ...options, level: lowest }, pino.multistream(streams));
  }
  return destination ? pino(options, destination) : pino(options);
}

/** Fields a person at the terminal does not read; the JSON file keeps them. */
const UNREAD_FIELDS = new Set([
  'time',
  'level',
  'pid',
  'hostname',
  'name',
  'msg',
  'component',
  'sdkComponent',
  'taskToken',
  'namespace',
  'taskQueue',
  'runId',
  'workflowRunId',
  'workflowType',
  'activityId',
  'isLocal',
  'repeatOf',
]);
const FIELD_MAX_CHARS = 120;

/** `key=value` for the scalar fields of a log line, and the message of an error field; objects stay in the JSON file. */
export function readableFields(log: Record<string, unknown>): string {
  const out: string[] = [];
  for (const [key, value] of Object.entries(log)) {
    if (UNREAD_FIELDS.has(key) || value === undefined || value === null) continue;
    let text: string;
    if (typeof value === 'object') {
      // An error: its message, or its type when it was logged without one (Temporal's failures).
      const { message, type } = value as { message?: unknown; type?: unknown };
      if (typeof message === 'string') text = message;
      else if (typeof type === 'string') text = type;
      else continue;
    } else {
      text = typeof value === 'number' && !Number.isInteger(value) ? String(Number(value.toPrecision(4))) : String(value);
    }
    text = text.split('\n', 1)[0] ?? '';
    if (text.length > FIELD_MAX_CHARS) text = `${text.slice(0, FIELD_MAX_CHARS - 3)}...`;
    out.push(`${key}=${/[\s"=]/.test(text) || text === '' ? JSON.stringify(text) : text}`);
  }
  return out.join(' ');
}

/**
 * A line from one task's own logger (an activity, a DAG task), from the Temporal worker's
 * internals, or one HTTP request's log (fastify's, with its reqId). Below warn these stay out of
 * the terminal unless LOG_LEVEL asks for debug: the terminal tells the run-level story (DAG run
 * started, succeeded), the file and the UI the rest.
 */
export function isTaskDetail(log: Record<string, unknown>): boolean {
  const level = typeof log.level === 'string' ? (pino.levels.values[log.level] ?? 0) : Number(log.level);
  if (level >= pino.levels.values.warn!) return false;
  return log.activity !== undefined || log.task !== undefined || log.sdkComponent === 'worker' || log.reqId !== undefined;
}

/** One line per event: time, level, `[component]`, the message's first line and its scalar fields. */
function readableStream(out: { write(line: string): unknown }, showTaskDetail: boolean): pino.DestinationStream {
  const format = prettyFactory({
    translateTime: 'SYS:HH:MM:ss',
    ignore: 'pid,hostname,name',
    hideObject: true,
    // Errors too stay on one line: their message is shown, their stack is in the JSON file.
    errorLikeObjectKeys: [],
    messageFormat: (log, messageKey, _level, { colors }) => {
      const component = typeof log.component === 'string' ? `[${log.component}] ` : '';
      const [first = '', ...more] = String(log[messageKey] ?? '').split('\n');
      const message = more.length === 0 ? first : `${first} (${more.length} more lines in the log file)`;
      const fields = readableFields(log);
      return `${component}${message}${fields === '' ? '' : ` ${colors.gray(fields)}`}`;
    },
  });
  return {
    write(line: string) {
      const log = JSON.parse(line) as Record<string, unknown>;
      if (!showTaskDetail && isTaskDetail(log)) return;
      out.write(format(log));
    },
  };
}
