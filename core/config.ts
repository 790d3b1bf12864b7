/**
 * The one place where segflow's configuration is read and validated.
 *
 * Every setting is an environment variable. Defaults point at the local stack
 * (`npm run stack:up`), whose addresses are also written to `.stack/env`; values
 * in the real environment always win over that file. An invalid setting stops
 * the process with one message that names every bad variable.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnv } from 'node:util';
import { z } from 'zod';
import { WebhookConfigError, parseWebhookSubscribers, type WebhookSubscriber } from './webhook-config.js';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const hostPort = z
  .string()
  .regex(/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/, 'expected host:port, for example 127.0.0.1:7233');

const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

const identifier = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,1023}$/, 'expected a BigQuery identifier (letters, digits, underscores)');

const bucketName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/, 'expected a GCS bucket name (3-63 lowercase letters, digits, dots, dashes)');

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const logFormat = z.enum(['auto', 'pretty', 'json']);

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v === '' ? undefined : v));

/** Environment variables as they are read; transforms turn them into the typed config. */
const envSchema = z.object({
  SEGFLOW_ENV: z.enum(['local', 'production']).default('local'),
  LOG_LEVEL: logLevel.default('info'),
  SEGFLOW_LOG_FORMAT: logFormat
    .default('auto')
    .describe(
      '`npm start` output. `pretty`: one readable line per event at `LOG_LEVEL` on stdout, and the full JSON log in `$SEGFLOW_STACK_DIR/logs/segflow.log`. `json`: JSON lines on stdout. `auto`: `pretty` when stdout is a terminal and `CI` is not set, else `json`.',
    ),
  SEGFLOW_LOG_FILE_LEVEL: logLevel.default('debug').describe('Level of the JSON log file written when `SEGFLOW_LOG_FORMAT` is `pretty`.'),

  TEMPORAL_ADDRESS: hostPort.default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('segflow'),
  TEMPORAL_UI_URL: httpUrl.default('http://127.0.0.1:8233'),
  TEMPORAL_API_KEY: optionalString,
  TEMPORAL_TLS: bool.default(false),
  TEMPORAL_TLS_CERT_PATH: optionalString,
  TEMPORAL_TLS_KEY_PATH: optionalString,
  TEMPORAL_TLS_SERVER_NAME: optionalString,

  GCP_PROJECT: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'expected a GCP project id').default('segflow-local'),
  GCP_LOCATION: z.string().min(1).default('US'),
  PUBSUB_EMULATOR_HOST: optionalString.pipe(hostPort.optional()),
  FIRESTORE_EMULATOR_HOST: optionalString.pipe(hostPort.optional()),
  SEGFLOW_GCS_ENDPOINT: optionalString.pipe(httpUrl.optional()),
  SEGFLOW_BIGQUERY_ENDPOINT: optionalString.pipe(httpUrl.optional()),

  SEGFLOW_EVENTS_TOPIC: z.string().min(1).default('customer-events'),
  SEGFLOW_LAKE_SUBSCRIPTION: z.string().min(1).default('events-lake'),
  SEGFLOW_TRIGGER_SUBSCRIPTION: z.string().min(1).default('events-triggers'),
  SEGFLOW_LAKE_BUCKET: bucketName.default('segflow-lake'),
  SEGFLOW_DATASET_RAW: identifier.default('raw'),
  SEGFLOW_DATASET_STAGING: identifier.default('staging'),
  SEGFLOW_DATASET_MARTS: identifier.default('marts'),
  SEGFLOW_FIRESTORE_PROFILES: z.string().min(1).default('customer_profiles'),

  SEGFLOW_INGEST_BATCH_SIZE: z.coerce.number().int().min(1).max(1000).default(1000),
  SEGFLOW_INGEST_MAX_WAIT_MS: z.coerce.number().int().min(100).max(60_000).default(2000),
  SEGFLOW_INGEST_ACK_DEADLINE_S: z.coerce.number().int().min(10).max(600).default(60),
  SEGFLOW_INGEST_CONCURRENCY: z.coerce.number().int().min(1).max(32).default(2),
  SEGFLOW_INGEST_RUN_FOR_MS: z.coerce.number().int().min(0).max(120_000).default(10_000),
  SEGFLOW_INGEST_WRITES_IN_FLIGHT: z.coerce.number().int().min(1).max(16).default(2),
  SEGFLOW_INGEST_BATCH_MAX_BYTES: z.coerce.number().int().min(1024).max(1_073_741_824).default(16_777_216),
  SEGFLOW_LAKE_OBJECT_MAX_BYTES: z.coerce.number().int().min(1024).max(4_294_967_296).default(33_554_432),
  SEGFLOW_INGEST_ALERT_LAG_S: z.coerce.number().min(0).default(900),
  SEGFLOW_INGEST_ALERT_QUARANTINE_SHARE: z.coerce.number().min(0).max(1).default(0.05),
  SEGFLOW_INGEST_ALERT_WINDOW_S: z.coerce.number().int().min(1).max(86_400).default(300),
  SEGFLOW_INGEST_ALERT_MIN_MESSAGES: z.coerce.number().int().min(1).default(100),
  SEGFLOW_EVENT_MAX_BYTES: z.coerce.number().int().min(256).max(10_000_000).default(65_536),
  SEGFLOW_EVENT_MAX_FUTURE_SKEW_S: z.coerce.number().int().min(0).default(300),

  SEGFLOW_WEBHOOKS: optionalString,
  SEGFLOW_RECLASSIFY_IDLE_MINUTES: z.coerce.number().positive().max(1440).default(10),
  SEGFLOW_ALERT_WEBHOOK_URLS: optionalString,
  SEGFLOW_ALERT_SLACK_WEBHOOK_URL: optionalString.pipe(httpUrl.optional()),
  SEGFLOW_ALERT_PAGERDUTY_ROUTING_KEY: optionalString,
  SEGFLOW_ALERT_PAGERDUTY_URL: httpUrl.default('https://events.pagerduty.com/v2/enqueue'),
  SEGFLOW_ALERT_PAGERDUTY_MIN_SEVERITY: z.enum(['critical', 'error', 'warning', 'info']).default('error'),

  SEGFLOW_SCHEDULE_PREFIX: z.string().regex(/^[A-Za-z0-9_.-]*$/, 'expected letters, digits, _ . - (or empty)').default(''),
  SEGFLOW_HOURLY_MINUTE: z.coerce.number().int().min(0).max(59).default(5),
  SEGFLOW_NIGHTLY_TIME: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM (24h), for example 02:00').default('02:00'),
  SEGFLOW_NIGHTLY_TIMEZONE: z
    .string()
    .refine((tz) => {
      try {
        new Intl.DateTimeFormat('en', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    }, 'expected an IANA time zone, for example Europe/Berlin')
    .default('UTC'),

  SEGFLOW_API_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  SEGFLOW_API_TOKENS: optionalString,
  SEGFLOW_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),

  SEGFLOW_SEGMENT_FEATURES: optionalString,
  SEGFLOW_SEGMENT_K_MIN: z.coerce.number().int().min(1).max(100).default(2),
  SEGFLOW_SEGMENT_K_MAX: z.coerce.number().int().min(1).max(100).default(12),
  SEGFLOW_SEGMENT_SAMPLE_SIZE: z.coerce.number().int().min(10).optional(),
  SEGFLOW_SEGMENT_PAGE_SIZE: z.coerce.number().int().min(100).max(100_000).default(10_000),
  SEGFLOW_SEGMENT_MIN_SEGMENT_SHARE: z.coerce.number().min(0).max(1).default(0.02),
  SEGFLOW_SEGMENT_SILHOUETTE_SAMPLE: z.coerce.number().int().min(10).max(20_000).default(2000),
  SEGFLOW_SEGMENT_N_INIT: z.coerce.number().int().min(1).max(50).default(4),
  SEGFLOW_SEGMENT_SEED: z.coerce.number().int().min(0).default(20261126),
  SEGFLOW_SEGMENT_MAX_CHANGED_SHARE: z.coerce.number().min(0).max(1).default(0.15),
  SEGFLOW_SEGMENT_MIN_ARI: z.coerce.number().min(-1).max(1).default(0.7),
  SEGFLOW_SEGMENT_MAX_CENTROID_DRIFT: z.coerce.number().min(0).default(0.25),
  SEGFLOW_SEGMENT_MAX_SIZE_SHIFT: z.coerce.number().min(0).max(1).default(0.05),
  SEGFLOW_SEGMENT_ALLOW_SEGMENT_CHANGES: bool.default(false),
  SEGFLOW_SEGMENT_PROMOTION_POLICY: z.enum(['promote_with_alert', 'hold']).default('promote_with_alert'),
});

export type RawEnv = Record<string, string | undefined>;

export interface Config {
  env: 'local' | 'production';
  log: { level: z.infer<typeof logLevel>; format: z.infer<typeof logFormat>; fileLevel: z.infer<typeof logLevel> };
  temporal: {
    address: string;
    namespace: string;
    taskQueue: string;
    uiUrl: string;
    apiKey?: string;
    tls?: { certPath?: string; keyPath?: string; serverName?: string };
  };
  gcp: {
    projectId: string;
    location: string;
    /** Set when a service is an emulator; unset means the real Google API with ADC. */
    pubsubEmulatorHost?: string;
    firestoreEmulatorHost?: string;
    gcsEndpoint?: string;
    bigqueryEndpoint?: string;
  };
  pubsub: { topic: string; lakeSubscription: string; triggerSubscription: string };
  /** objectMaxBytes: uncompressed NDJSON bytes per lake object; a bigger batch is split into several objects. */
  lake: { bucket: string; objectMaxBytes: number };
  ingest: {
    batchSize: number;
    maxWaitMs: number;
    ackDeadlineS: number;
    concurrency: number;
    /** How long one ingestBatch activity keeps taking batches while messages flow (0: one batch). */
    runForMs: number;
    /** Batches one activity validates and writes at once while it pulls the next. */
    writesInFlight: number;
    /** Message data one batch takes at most; the rest waits in the buffer for the next batch. */
    batchMaxBytes: number;
    /** Thresholds of the ingestion lag and quarantine-rate alerts (core/ingest-alerts.ts). */
    alerts: { lagMs: number; quarantineShare: number; windowMs: number; minMessages: number };
    maxEventBytes: number;
    maxFutureSkewMs: number;
  };
  warehouse: { raw: string; staging: string; marts: string };
  firestore: { profiles: string };
  api: { port: number; tokens: string[] };
  /** Subscribers told about segment changes (SEGFLOW_WEBHOOKS, a JSON array). */
  webhooks: WebhookSubscriber[];
  /** Real-time reclassification: a customer's workflow ends after this many minutes without events. */
  reclassify: { idleMinutes: number };
  /** Alert channels: generic JSON webhooks (Slack-compatible `text` field), Slack, PagerDuty Events v2. */
  alerts: {
    webhookUrls: string[];
    slackWebhookUrl?: string;
    pagerDuty?: { routingKey: string; url: string; minSeverity: 'critical' | 'error' | 'warning' | 'info' };
  };
  /** Schedules as code (schedules/definitions.ts). */
  schedules: {
    /** Prefixes schedule ids and DAG run ids, so several deployments (or tests) share a namespace. */
    prefix: string;
    hourlyMinute: number;
    nightlyTime: string;
    nightlyTimezone: string;
  };
  metrics: { port: number };
  /** Nightly segmentation (dags/nightly_segmentation.ts); features as a JSON FeatureSpec list, default in activities/segmentation.ts. */
  segmentation: {
    featuresJson?: string;
    kMin: number;
    kMax: number;
    /** Training sample; unset: 5% of the customers, 5,000 to 50,000 (defaultSampleSize in core/segmentation/job.ts). */
    sampleSize?: number;
    pageSize: number;
    minSegmentShare: number;
    silhouetteSampleSize: number;
    nInit: number;
    seed: number;
    thresholds: { maxChangedShare: number; minAdjustedRandIndex: number; maxCentroidDrift: number; maxSizeShift: number; allowSegmentChanges: boolean };
    promotionPolicy: 'promote_with_alert' | 'hold';
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `Invalid segflow configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  - ${p}`).join('\n') +
        '\nFix these environment variables (see the configuration table in README.md) and start again.',
    );
    this.name = 'ConfigError';
  }
}

/** Validate an environment and build the typed configuration. Pure: no I/O. */
export function parseConfig(env: RawEnv): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '(environment)');
      const found = env[name];
      return `${name}: ${issue.message}${found === undefined ? ' (not set)' : ` (found ${JSON.stringify(redactValue(name, found))})`}`;
    });
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  const problems: string[] = [];
  const local = e.SEGFLOW_ENV === 'local';
  const gcp = {
    projectId: e.GCP_PROJECT,
    location: e.GCP_LOCATION,
    pubsubEmulatorHost: e.PUBSUB_EMULATOR_HOST ?? (local ? '127.0.0.1:8085' : undefined),
    firestoreEmulatorHost: e.FIRESTORE_EMULATOR_HOST ?? (local ? '127.0.0.1:8086' : undefined),
    gcsEndpoint: e.SEGFLOW_GCS_ENDPOINT ?? (local ? 'http://127.0.0.1:4443' : undefined),
    bigqueryEndpoint: e.SEGFLOW_BIGQUERY_ENDPOINT ?? (local ? 'http://127.0.0.1:9050' : undefined),
  };
  if ((e.TEMPORAL_TLS_CERT_PATH === undefined) !== (e.TEMPORAL_TLS_KEY_PATH === undefined)) {
    problems.push('TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH: set both for mTLS, or neither');
  }
  const tokens = (e.SEGFLOW_API_TOKENS ?? (local ? 'local-dev-token' : ''))
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  if (tokens.some((t) => t.length < 12)) {
    problems.push('SEGFLOW_API_TOKENS: every token must be at least 12 characters');
  }
  if (!local && tokens.length === 0) {
    problems.push('SEGFLOW_API_TOKENS: required in production (comma-separated bearer tokens for the profile API)');
  }
  let webhooks: WebhookSubscriber[] = [];
  try {
    webhooks = parseWebhookSubscribers(e.SEGFLOW_WEBHOOKS, { requireHttps: !local });
  } catch (err) {
    if (err instanceof WebhookConfigError) problems.push(...err.problems.map((p) => `SEGFLOW_WEBHOOKS: ${p}`));
    else throw err;
  }
  const alertUrls = (e.SEGFLOW_ALERT_WEBHOOK_URLS ?? '')
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u.length > 0);
  for (const u of alertUrls) {
    if (!/^https?:\/\/[^\s]+$/.test(u)) problems.push('SEGFLOW_ALERT_WEBHOOK_URLS: expected comma-separated http(s) URLs');
  }
  if (e.SEGFLOW_SEGMENT_K_MIN > e.SEGFLOW_SEGMENT_K_MAX) {
    problems.push(`SEGFLOW_SEGMENT_K_MIN and SEGFLOW_SEGMENT_K_MAX: expected K_MIN <= K_MAX, found ${e.SEGFLOW_SEGMENT_K_MIN} > ${e.SEGFLOW_SEGMENT_K_MAX}`);
  }
  if (e.SEGFLOW_SEGMENT_FEATURES !== undefined) {
    try {
      JSON.parse(e.SEGFLOW_SEGMENT_FEATURES);
    } catch {
      problems.push('SEGFLOW_SEGMENT_FEATURES: expected a JSON array of {"name", "weight", "log"?, "role"?}');
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const wantsTls = e.TEMPORAL_TLS || e.TEMPORAL_API_KEY !== undefined || e.TEMPORAL_TLS_CERT_PATH !== undefined;
  return {
    env: e.SEGFLOW_ENV,
    log: { level: e.LOG_LEVEL, format: e.SEGFLOW_LOG_FORMAT, fileLevel: e.SEGFLOW_LOG_FILE_LEVEL },
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      uiUrl: e.TEMPORAL_UI_URL.replace(/\/+$/, ''),
      apiKey: e.TEMPORAL_API_KEY,
      tls: wantsTls
        ? { certPath: e.TEMPORAL_TLS_CERT_PATH, keyPath: e.TEMPORAL_TLS_KEY_PATH, serverName: e.TEMPORAL_TLS_SERVER_NAME }
        : undefined,
    },
    gcp,
    pubsub: {
      topic: e.SEGFLOW_EVENTS_TOPIC,
      lakeSubscription: e.SEGFLOW_LAKE_SUBSCRIPTION,
      triggerSubscription: e.SEGFLOW_TRIGGER_SUBSCRIPTION,
    },
    lake: { bucket: e.SEGFLOW_LAKE_BUCKET, objectMaxBytes: e.SEGFLOW_LAKE_OBJECT_MAX_BYTES },
    ingest: {
      batchSize: e.SEGFLOW_INGEST_BATCH_SIZE,
      maxWaitMs: e.SEGFLOW_INGEST_MAX_WAIT_MS,
      ackDeadlineS: e.SEGFLOW_INGEST_ACK_DEADLINE_S,
      concurrency: e.SEGFLOW_INGEST_CONCURRENCY,
      runForMs: e.SEGFLOW_INGEST_RUN_FOR_MS,
      writesInFlight: e.SEGFLOW_INGEST_WRITES_IN_FLIGHT,
      batchMaxBytes: e.SEGFLOW_INGEST_BATCH_MAX_BYTES,
      alerts: {
        lagMs: e.SEGFLOW_INGEST_ALERT_LAG_S * 1000,
        quarantineShare: e.SEGFLOW_INGEST_ALERT_QUARANTINE_SHARE,
        windowMs: e.SEGFLOW_INGEST_ALERT_WINDOW_S * 1000,
        minMessages: e.SEGFLOW_INGEST_ALERT_MIN_MESSAGES,
      },
      maxEventBytes: e.SEGFLOW_EVENT_MAX_BYTES,
      maxFutureSkewMs: e.SEGFLOW_EVENT_MAX_FUTURE_SKEW_S * 1000,
    },
    warehouse: { raw: e.SEGFLOW_DATASET_RAW, staging: e.SEGFLOW_DATASET_STAGING, marts: e.SEGFLOW_DATASET_MARTS },
    firestore: { profiles: e.SEGFLOW_FIRESTORE_PROFILES },
    api: { port: e.SEGFLOW_API_PORT, tokens },
    webhooks,
    reclassify: { idleMinutes: e.SEGFLOW_RECLASSIFY_IDLE_MINUTES },
    alerts: {
      webhookUrls: alertUrls,
      ...(e.SEGFLOW_ALERT_SLACK_WEBHOOK_URL === undefined ? {} : { slackWebhookUrl: e.SEGFLOW_ALERT_SLACK_WEBHOOK_URL }),
      ...(e.SEGFLOW_ALERT_PAGERDUTY_ROUTING_KEY === undefined
        ? {}
        : {
            pagerDuty: {
              routingKey: e.SEGFLOW_ALERT_PAGERDUTY_ROUTING_KEY,
              url: e.SEGFLOW_ALERT_PAGERDUTY_URL,
              minSeverity: e.SEGFLOW_ALERT_PAGERDUTY_MIN_SEVERITY,
            },
          }),
    },
    schedules: {
      prefix: e.SEGFLOW_SCHEDULE_PREFIX,
      hourlyMinute: e.SEGFLOW_HOURLY_MINUTE,
      nightlyTime: e.SEGFLOW_NIGHTLY_TIME,
      nightlyTimezone: e.SEGFLOW_NIGHTLY_TIMEZONE,
    },
    metrics: { port: e.SEGFLOW_METRICS_PORT },
    segmentation: {
      featuresJson: e.SEGFLOW_SEGMENT_FEATURES,
      kMin: e.SEGFLOW_SEGMENT_K_MIN,
      kMax: e.SEGFLOW_SEGMENT_K_MAX,
      ...(e.SEGFLOW_SEGMENT_SAMPLE_SIZE !== undefined ? { sampleSize: e.SEGFLOW_SEGMENT_SAMPLE_SIZE } : {}),
      pageSize: e.SEGFLOW_SEGMENT_PAGE_SIZE,
      minSegmentShare: e.SEGFLOW_SEGMENT_MIN_SEGMENT_SHARE,
      silhouetteSampleSize: e.SEGFLOW_SEGMENT_SILHOUETTE_SAMPLE,
      nInit: e.SEGFLOW_SEGMENT_N_INIT,
      seed: e.SEGFLOW_SEGMENT_SEED,
      thresholds: {
        maxChangedShare: e.SEGFLOW_SEGMENT_MAX_CHANGED_SHARE,
        minAdjustedRandIndex: e.SEGFLOW_SEGMENT_MIN_ARI,
        maxCentroidDrift: e.SEGFLOW_SEGMENT_MAX_CENTROID_DRIFT,
        maxSizeShift: e.SEGFLOW_SEGMENT_MAX_SIZE_SHIFT,
        allowSegmentChanges: e.SEGFLOW_SEGMENT_ALLOW_SEGMENT_CHANGES,
      },
      promotionPolicy: e.SEGFLOW_SEGMENT_PROMOTION_POLICY,
    },
  };
}

// Webhook URLs (Slack's above all) are credentials: whoever has one can post.
const SECRET_NAME = /KEY|TOKEN|SECRET|PASSWORD|WEBHOOK/i;

function redactValue(name: string, value: string): string {
  return SECRET_NAME.test(name) ? '[redacted]' : value;
}

/** The env file written by `npm run stack:up`; read so every command finds the local stack. */
export function stackEnvFile(root = PROJECT_ROOT): string {
  return path.join(process.env.SEGFLOW_STACK_DIR ?? path.join(root, '.stack'), 'env');
}

/** Read `.stack/env` (if any) under the real environment, then validate. */
export function loadConfig(env: RawEnv = process.env): Config {
  const file = stackEnvFile();
  const fromFile = existsSync(file) ? parseEnv(readFileSync(file, 'utf8')) : {};
  return parseConfig({ ...fromFile, ...env });
}

/** loadConfig for command-line entry points: a bad setting prints the one message and exits 1. */
export function loadConfigOrExit(env: RawEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
}

/** True when every service is on this machine, so `npm start` may run the local stack. */
export function usesLocalStack(config: Config): boolean {
  const loopback = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:|$)/;
  const hostOf = (u: string | undefined) => (u === undefined ? '' : u.replace(/^https?:\/\//, ''));
  return (
    config.env === 'local' &&
    loopback.test(config.temporal.address) &&
    [config.gcp.pubsubEmulatorHost, config.gcp.firestoreEmulatorHost, hostOf(config.gcp.gcsEndpoint), hostOf(config.gcp.bigqueryEndpoint)].every(
      (h) => h !== undefined && loopback.test(h),
    )
  );
}
