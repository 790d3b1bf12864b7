/**
 * The Temporal Runtime, installed once per process: its own logs and the
 * workflow and activity loggers (which carry workflowId, runId and activityType)
 * all go through pino; Temporal's metrics go to a Prometheus endpoint.
 */
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import { Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import type { Logger } from '../core/logger.js';
import { createRepeatedLog, type RepeatedLog } from '../core/repeated-log.js';

const PINO_LEVEL: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * Temporal's Logger interface on top of pino. A warning or error repeated with the same cause
 * (an activity failing the same way for every customer) is logged once, then counted.
 */
export class PinoTemporalLogger implements TemporalLogger {
  private readonly repeated: RepeatedLog;
  constructor(private readonly pino: Logger) {
    this.repeated = createRepeatedLog(pino);
  }
  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (level === 'WARN' || level === 'ERROR') {
      this.repeated.log(level === 'WARN' ? 'warn' : 'error', repeatCause(message, meta), meta ?? {}, message);
      return;
    }
    this.pino[PINO_LEVEL[level]](meta ?? {}, message);
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}

/** Run ids (and the event positions after them) that the SDK core puts in some warnings. */
const RUN_ID = /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?::\d+)*/gi;

/**
 * What makes two warnings the same: the message with run ids left out (a slow workflow task is
 * one cause, whichever run it was), the activity or workflow type, and the error's text.
 */
export function repeatCause(message: string, meta: LogMetadata | undefined): string {
  const type = meta?.activityType ?? meta?.workflowType ?? '';
  const error = meta?.error;
  const text = error instanceof Error ? error.message : typeof error === 'string' ? error : '';
  return `${String(type)}: ${message.replace(RUN_ID, '<run>')}: ${text}`;
}

let installed = false;

export interface RuntimeSettings {
  logger: Logger;
  /** host:port for Temporal's Prometheus exporter; omit to disable. */
  metricsBindAddress?: string;
}

export function installRuntime({ logger, metricsBindAddress }: RuntimeSettings): void {
  if (installed) return;
  installed = true;
  try {
    installTemporalRuntime(logger, metricsBindAddress);
  } catch (err) {
    if (metricsBindAddress && /address already in use/i.test(String(err))) {
      throw new Error(
        `the metrics address ${metricsBindAddress} is already in use (another segflow worker?); ` +
          'set SEGFLOW_METRICS_PORT to a free port, or 0 to turn metrics off',
        { cause: err },
      );
    }
    throw err;
  }
}

function installTemporalRuntime(logger: Logger, metricsBindAddress: string | undefined): void {
  Runtime.install({
    logger: new PinoTemporalLogger(logger.child({ component: 'temporal' })),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'WARN', other: 'ERROR' }), forward: {} },
      ...(metricsBindAddress ? { metrics: { prometheus: { bindAddress: metricsBindAddress } } } : {}),
    },
  });
}
