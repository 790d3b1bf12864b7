/**
 * segflow's own Prometheus metrics (prom-client), next to the Temporal SDK's: the SDK's exporter
 * lives in the Rust core and serves SEGFLOW_METRICS_PORT on its own, so segflow's registry is
 * served on the port after it (SEGFLOW_METRICS_PORT + 1; `metricsPorts(config)`).
 *
 * Other modules record through the small functions below; they never touch prom-client. Task
 * durations, ingestion counts and lag, and alert deliveries are recorded by the worker's
 * activity interceptor (`activityMetricsInterceptor`), so activities stay free of metrics code.
 */
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, ActivityInterceptorsFactory, Next } from '@temporalio/worker';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'segflow_process_' });

const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const TASK_BUCKETS_S = [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600];

const eventsIngested = new Counter({
  name: 'segflow_events_ingested_total',
  help: 'Valid events written to the lake.',
  registers: [registry],
});
const eventsQuarantined = new Counter({
  name: 'segflow_events_quarantined_total',
  help: 'Invalid messages written to the quarantine.',
  registers: [registry],
});
const ingestBatches = new Counter({
  name: 'segflow_ingest_batches_total',
  help: 'Non-empty ingestion batches written.',
  registers: [registry],
});
const ingestionLag = new Gauge({
  name: 'segflow_ingestion_lag_seconds',
  help: 'Age of the oldest message of the last non-empty batch when it was written (publish to lake).',
  registers: [registry],
});
const taskDuration = new Histogram({
  name: 'segflow_dag_task_duration_seconds',
  help: 'Duration of DAG task attempts, by DAG, task and outcome.',
  labelNames: ['dag', 'task', 'state'] as const,
  buckets: TASK_BUCKETS_S,
  registers: [registry],
});
const reclassifyLatency = new Histogram({
  name: 'segflow_reclassify_latency_seconds',
  help: 'Key event published to profile updated (real-time reclassification).',
  buckets: LATENCY_BUCKETS_S,
  registers: [registry],
});
const apiLatency = new Histogram({
  name: 'segflow_api_request_duration_seconds',
  help: 'Profile API request duration by route and status code.',
  labelNames: ['route', 'status'] as const,
  buckets: LATENCY_BUCKETS_S,
  registers: [registry],
});
const alertsRaised = new Counter({
  name: 'segflow_alerts_total',
  help: 'Alerts raised, by kind and severity.',
  labelNames: ['kind', 'severity'] as const,
  registers: [registry],
});
const deadlinesMissed = new Counter({
  name: 'segflow_dag_deadlines_missed_total',
  help: 'DAG run and task deadlines missed (one per deadline alert), by DAG and scope (run or the task id).',
  labelNames: ['dag', 'scope'] as const,
  registers: [registry],
});
const alertDeliveryFailures = new Counter({
  name: 'segflow_alert_delivery_failures_total',
  help: 'Alert deliveries given up on, by channel kind (webhook, slack, pagerduty).',
  labelNames: ['channel'] as const,
  registers: [registry],
});

/** The part of an ingestion batch result metrics need (activities/ingest.ts IngestBatchResult). */
export interface IngestBatchMetrics {
  readonly pulled: number;
  readonly written: number;
  readonly quarantined: number;
  /** Write-then-ack batches the activity made (one ingestBatch activity takes batches while messages flow). */
  readonly batches?: number;
  readonly oldestPublishTime?: string;
  readonly finishedAt: string;
}

export function recordIngestBatch(result: IngestBatchMetrics): void {
  if (result.pulled === 0) return;
  eventsIngested.inc(result.written);
  eventsQuarantined.inc(result.quarantined);
  ingestBatches.inc(result.batches ?? 1);
  if (result.oldestPublishTime !== undefined) {
    const lagMs = Date.parse(result.finishedAt) - Date.parse(result.oldestPublishTime);
    if (Number.isFinite(lagMs)) ingestionLag.set(Math.max(0, lagMs) / 1000);
  }
}

export type TaskOutcome = 'succeeded' | 'failed';

export function recordTaskDuration(dag: string, task: string, ms: number, state: TaskOutcome | string): void {
  taskDuration.observe({ dag, task, state }, ms / 1000);
}

export function recordReclassifyLatency(ms: number): void {
  reclassifyLatency.observe(ms / 1000);
}

/** `route` is the route pattern (`/v1/customers/:id/profile`), never the raw URL: ids would explode cardinality. */
export function recordApiLatency(route: string, status: number, ms: number): void {
  apiLatency.observe({ route, status: String(status) }, ms / 1000);
}

export function recordAlert(kind: string, severity: string, failedChannels: readonly string[] = []): void {
  alertsRaised.inc({ kind, severity });
  for (const channel of failedChannels) alertDeliveryFailures.inc({ channel: channel.split(/[#\s]/)[0] ?? channel });
}

/** Prometheus text exposition of segflow's registry. */
export function metricsText(): Promise<string> {
  return registry.metrics();
}

/** Temporal's exporter port and segflow's (the next one); undefined when metrics are off (port 0). */
export function metricsPorts(config: { metrics: { port: number } }): { temporal: number; segflow: number } | undefined {
  return config.metrics.port === 0 ? undefined : { temporal: config.metrics.port, segflow: config.metrics.port + 1 };
}

export interface MetricsServer {
  readonly url: string;
  close(): Promise<void>;
}

let shared: Promise<MetricsServer> | undefined;

/** Serves GET /metrics; one per process (later calls return the first server). */
export function startMetricsServer(port: number, host = '127.0.0.1'): Promise<MetricsServer> {
  shared ??= new Promise<MetricsServer>((resolve, reject) => {
    const server: Server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('segflow metrics are at /metrics\n');
        return;
      }
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err)),
      );
    });
    server.once('error', (err: NodeJS.ErrnoException) => {
      shared = undefined;
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(
              `segflow metrics port ${host}:${port} is already in use; set SEGFLOW_METRICS_PORT (segflow uses it + 1) or 0 to turn metrics off`,
            )
          : err,
      );
    });
    server.listen(port, host, () => {
      server.unref();
      const address = server.address() as AddressInfo;
      resolve({
        url: `http://${host}:${address.port}/metrics`,
        close: () =>
          new Promise<void>((done) => {
            shared = undefined;
            server.close(() => done());
          }),
      });
    });
  });
  return shared;
}

interface TaskLikeInput {
  readonly dagId?: unknown;
  readonly taskId?: unknown;
}

class ActivityMetrics implements ActivityInboundCallsInterceptor {
  constructor(private readonly activityType: string) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const first = input.args[0] as TaskLikeInput | undefined;
    const dag = typeof first?.dagId === 'string' ? first.dagId : undefined;
    const task = typeof first?.taskId === 'string' ? first.taskId : undefined;
    const started = performance.now();
    try {
      const result = await next(input);
      if (dag !== undefined && task !== undefined) recordTaskDuration(dag, task, performance.now() - started, 'succeeded');
      this.recordResult(result);
      return result;
    } catch (err) {
      if (dag !== undefined && task !== undefined) recordTaskDuration(dag, task, performance.now() - started, 'failed');
      throw err;
    }
  }

  private recordResult(result: unknown): void {
    if (this.activityType === 'ingestBatch') recordIngestBatch(result as IngestBatchMetrics);
    if (this.activityType === 'raiseAlert' && typeof result === 'object' && result !== null) {
      const report = result as { dedupKey?: string; deliveries?: { channel: string; delivered: boolean }[] };
      const [kind = 'unknown', dag, scope] = report.dedupKey?.split('/') ?? [];
      // dag_deadline_missed/<dag>/<run|task>/<interval start> (core/deadlines.ts)
      if (kind === 'dag_deadline_missed' && dag !== undefined) deadlinesMissed.inc({ dag, scope: scope ?? 'run' });
      recordAlert(
        kind,
        'any',
        (report.deliveries ?? []).filter((d) => !d.delivered).map((d) => d.channel),
      );
    }
  }
}

/** Worker interceptor: DAG task durations, ingestion counters and lag, alert deliveries. */
export const activityMetricsInterceptor: ActivityInterceptorsFactory = (ctx) => ({
  inbound: new ActivityMetrics(ctx.info.activityType),
});
