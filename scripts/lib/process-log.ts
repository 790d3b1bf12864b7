/**
 * One log stream for the processes `npm start` supervises: each child's JSON line is written again
 * through the parent's logger (readable at a terminal, JSON in a pipe or the log file), tagged with
 * the process it came from (`process` field; `[worker]`, `[listener/...]`, `[api]` at a terminal).
 */
import type { Logger } from '../../core/logger.js';
import type { ChildLine, SupervisorEvent } from './supervisor.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
type Level = (typeof LEVELS)[number];
/** pino's numeric levels, for a child that logs them as numbers. */
const NUMERIC: Record<number, Level> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
/** Fields the parent's logger sets again itself. */
const DROPPED = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name']);

function levelOf(value: unknown): Level {
  if (typeof value === 'number') return NUMERIC[value] ?? 'info';
  return LEVELS.find((l) => l === value) ?? 'info';
}

export function relayChildLine(logger: Logger, line: ChildLine): void {
  if (line.record === undefined) {
    const level: Level = line.stream === 'stderr' ? 'warn' : 'info';
    logger[level]({ process: line.process, component: line.process }, line.text);
    return;
  }
  const fields: Record<string, unknown> = { process: line.process };
  for (const [k, v] of Object.entries(line.record)) if (!DROPPED.has(k)) fields[k] = v;
  fields.component = typeof line.record.component === 'string' ? `${line.process}/${line.record.component}` : line.process;
  fields.processPid = line.record.pid;
  logger[levelOf(line.record.level)](fields, typeof line.record.msg === 'string' ? line.record.msg : '');
}

export function logSupervisorEvent(logger: Logger, e: SupervisorEvent): void {
  const fields = { component: 'supervisor', ...e };
  switch (e.event) {
    case 'started':
      logger.info(fields, `${e.process} started (pid ${e.childPid})`);
      break;
    case 'exited':
      logger.error(fields, `${e.process} exited (${e.signal ?? `code ${e.code}`}) after ${((e.uptimeMs ?? 0) / 1000).toFixed(1)} s`);
      break;
    case 'restarting':
      logger.warn(fields, `restarting ${e.process} in ${((e.restartInMs ?? 0) / 1000).toFixed(1)} s (restart ${e.restarts})`);
      break;
    case 'stopped':
      logger.info(fields, `${e.process} stopped`);
      break;
    case 'killed':
      logger.warn(fields, `${e.process} did not stop in time; killed`);
      break;
  }
}
