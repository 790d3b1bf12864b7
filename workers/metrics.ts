/**
 * segflow's own Prometheus metrics (prom-client), next to the Temporal SDK's: the SDK's exporter
 * lives in the Rust core and serves SEGFLOW_METRICS_PORT on its own, so segflow's registry is
 * served on the port after it (SEGFLOW_METRICS_PORT + 1; `metricsPorts(config)`).
 *
 * Other modules record through the small functions below; they never touch prom-client. Task
 * durations, ingestion counts and lag, alert and webhook deliveries are recorded by the worker's
 * activity interceptor (`activityMetricsInterceptor`), so activities stay free of metrics code.
 * Segment health (sizes, silhouette, stability, model age) is read from the model registry when
 * Prometheus scrapes, cached for a few seconds, so every worker shows the same figures.
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
const invalidMessages = new Counter({
  name: 'segflow_invalid_messages_total',
  help: 'Invalid messages by where they were seen (ingest: quarantined; triggers: acked by the trigger listener) and reason code; a message counts once per code it carries.',
  labelNames: ['source', 'reason'] as const,
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

const webhookDeliveries = new Counter({
  name: 'segflow_webhook_deliveries_total',
  help: 'Segment-change webhook delivery attempts by subscriber and outcome (delivered, filtered, failed: retried, rejected: given up).',
  labelNames: ['subscriber', 'outcome'] as const,
  registers: [registry],
});
const profileReads = new Counter({
  name: 'segflow_api_profile_reads_total',
  help: 'Profiles asked of the API by result: fresh, stale (served from the cache while Firestore was slow or down), not_found, unavailable.',
  labelNames: ['result'] as const,
  registers: [registry],
});

// ---- segment health: read from the model registry when scraped (at most every SEGMENT_HEALTH_TTL_MS)

/** What the segment health gauges show; stores/model-registry.ts readSegmentHealth has this shape. */
export interface SegmentHealthFigures {
  version: string;
  k: number;
  silhouette: number;
  current_since: string;
  segments: ReadonlyArray<{ id: number; label: string; customers: number; share: number; silhouette: number | null }>;
  stability: {
    model_version: string;
    changed_share: number | null;
    ari: number | null;
    max_centroid_drift: number | null;
    decision: string;
  } | null;
}

const SEGMENT_HEALTH_TTL_MS = 15_000;
let healthSource: (() => Promise<SegmentHealthFigures | null>) | undefined;
let healthCache: { at: number; value: Promise<SegmentHealthFigures | null> } | undefined;

/** Where the segment health gauges read from (the worker passes the model registry); undefined turns them off. */
export function setSegmentHealthSource(source: (() => Promise<SegmentHealthFigures | null>) | undefined): void {
  healthSource = source;
  healthCache = undefined;
}

/** The next scrape reads the registry again (after a segmentation task or a promotion in this process). */
export function invalidateSegmentHealth(): void {
  healthCache = undefined;
}

async function segmentHealth(): Promise<SegmentHealthFigures | null> {
  if (healthSource === undefined) return null;
  if (healthCache === undefined || Date.now() - healthCache.at > SEGMENT_HEALTH_TTL_MS) {
    const source = healthSource;
    // A failed read keeps the last figures rather than blanking the dashboard.
    const previous = healthCache?.value ?? Promise.resolve(null);
    healthCache = { at: Date.now(), value: source().catch(() => previous) };
  }
  return healthCache.value;
}

/** A gauge filled from the health snapshot on every scrape; no series at all before a model is current. */
function healthGauge<L extends string>(
  name: string,
  help: string,
  labelNames: readonly L[],
  fill: (gauge: Gauge<L>, health: SegmentHealthFigures) => void,
): Gauge<L> {
  return new Gauge<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect() {
      this.reset();
      const health = await segmentHealth();
      if (health !== null) fill(this, health);
    },
  });
}

const segmentLabels = ['model_version', 'segment_id', 'segment_label'] as const;
const segmentOf = (h: SegmentHealthFigures, s: SegmentHealthFigures['segments'][number]) => ({
  model_version: h.version,
  segment_id: String(s.id),
  segment_label: s.label,
});
healthGauge('segflow_segment_customers', 'Customers per segment of the current model (marts.customer_segments).', segmentLabels, (g, h) => {
  for (const s of h.segments) g.set(segmentOf(h, s), s.customers);
});
healthGauge('segflow_segment_share', "Each segment's share of the customers, current model.", segmentLabels, (g, h) => {
  for (const s of h.segments) g.set(segmentOf(h, s), s.share);
});
healthGauge(
  'segflow_segment_silhouette',
  'Mean silhouette of each segment of the current model (cohesion and separation).',
  segmentLabels,
  (g, h) => {
    for (const s of h.segments) if (s.silhouette !== null) g.set(segmentOf(h, s), s.silhouette);
  },
);
healthGauge('segflow_model_silhouette', 'Mean silhouette of the current model.', ['model_version'], (g, h) => {
  g.set({ model_version: h.version }, h.silhouette);
});
healthGauge('segflow_model_segments', 'Segments (k) of the current model.', ['model_version'], (g, h) => {
  g.set({ model_version: h.version }, h.k);
});
healthGauge('segflow_model_age_seconds', 'Seconds since the current model became current.', ['model_version'], (g, h) => {
  g.set({ model_version: h.version }, Math.max(0, (Date.now() - Date.parse(h.current_since)) / 1000));
});
const stabilityLabels = ['model_version', 'decision'] as const;
const stabilityGauge = (name: string, help: string, pick: (s: NonNullable<SegmentHealthFigures['stability']>) => number | null) =>
  healthGauge(name, help, stabilityLabels, (g, h) => {
    const value = h.stability === null ? null : pick(h.stability);
    if (h.stability !== null && value !== null) g.set({ model_version: h.stability.model_version, decision: h.stability.decision }, value);
  });
stabilityGauge(
  'segflow_segment_changed_share',
  'Share of customers whose segment the last measured candidate changed (marts.segment_stability).',
  (s) => s.changed_share,
);
stabilityGauge(
  'segflow_segment_adjusted_rand_index',
  'Adjusted Rand index of the last measured candidate against the model it was compared with.',
  (s) => s.ari,
);
stabilityGauge('segflow_segment_max_centroid_drift', 'Largest centroid drift of the last measured candidate.', (s) => s.max_centroid_drift);

/** The part of an ingestion batch result metrics need (activities/ingest.ts IngestBatchResult). */
export interface IngestBatchMetrics {
  readonly pulled: number;
  readonly written: number;
  readonly quarantined: number;
  /** Write-then-ack batches the activity made (one ingestBatch activity takes batches while messages flow). */
  readonly batches?: number;
  readonly oldestPublishTime?: string;
  readonly finishedAt: string;
  /** Quarantined messages per reason code. */
  readonly reasons?: Readonly<Record<string, number>>;
}

/** Counts invalid messages per reason code; `source` is a fixed name (ingest, triggers), never input. */
export function recordInvalidMessages(source: 'ingest' | 'triggers', reasons: Readonly<Record<string, number>>): void {
  for (const [reason, n] of Object.entries(reasons)) invalidMessages.inc({ source, reason }, n);
}

export function recordIngestBatch(result: IngestBatchMetrics): void {
  if (result.pulled === 0) return;
  eventsIngested.inc(result.written);
  eventsQuarantined.inc(result.quarantined);
  ingestBatches.inc(result.batches ?? 1);
  if (result.reasons !== undefined) recordInvalidMessages('ingest', result.reasons);
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

export type ProfileReadResult = 'fresh' | 'stale' | 'not_found' | 'unavailable';

export function recordProfileRead(result: ProfileReadResult): void {
  profileReads.inc({ result });
}

export type WebhookOutcome = 'delivered' | 'filtered' | 'failed' | 'rejected';

export function recordWebhookDelivery(subscriber: string, outcome: WebhookOutcome): void {
  webhookDeliveries.inc({ subscriber, outcome });
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
      this.recordResult(result, input.args[0]);
      return result;
    } catch (err) {
      if (dag !== undefined && task !== undefined) recordTaskDuration(dag, task, performance.now() - started, 'failed');
      if (this.activityType === 'deliverSegmentChange') {
        const rejected = (err as { nonRetryable?: unknown }).nonRetryable === true;
        recordWebhookDelivery(subscriberOf(input.args[0]), rejected ? 'rejected' : 'failed');
      }
      throw err;
    }
  }

  private recordResult(result: unknown, firstArg: unknown): void {
    if (this.activityType.startsWith('segmentation')) invalidateSegmentHealth();
    if (this.activityType === 'deliverSegmentChange') {
      const delivery = result as { skipped?: string; delivered?: boolean } | undefined;
      recordWebhookDelivery(subscriberOf(firstArg), delivery?.skipped === 'filtered' ? 'filtered' : 'delivered');
    }
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

function subscriberOf(arg: unknown): string {
  const id = (arg as { subscriberId?: unknown } | undefined)?.subscriberId;
  return typeof id === 'string' ? id : 'unknown';
}

/** Worker interceptor: DAG task durations, ingestion counters and lag, alert and webhook deliveries. */
export const activityMetricsInterceptor: ActivityInterceptorsFactory = (ctx) => ({
  inbound: new ActivityMetrics(ctx.info.activityType),
});
