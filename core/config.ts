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
import { DEFAULT_SEGMENT_FEATURES } from './segmentation/features.js';
import { FeatureSpecListSchema, type FeatureSpec } from './segmentation/prepare.js';
import { parseContractExtensions, type ContractExtensions } from './contract-extensions.js';
import { WebhookConfigError, parseWebhookSubscribers, type WebhookSubscriber } from './webhook-config.js';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');

const hostPort = z.string().regex(/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/, 'expected host:port, for example 127.0.0.1:7233');

const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,1023}$/, 'expected a BigQuery identifier (letters, digits, underscores)');

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
export const envSchema = z.object({
  SEGFLOW_ENV: z
    .enum(['local', 'production'])
    .default('local')
    .describe(
      '`local`: services on loopback, with the local defaults below. `production`: real Google Cloud with Application Default Credentials; no emulator defaults, `SEGFLOW_API_TOKENS` required, webhook URLs must be https.',
    ),
  LOG_LEVEL: logLevel.default('info').describe('pino log level.'),
  SEGFLOW_LOG_FORMAT: logFormat
    .default('auto')
    .describe(
      '`npm start` output. `pretty`: one readable line per event at `LOG_LEVEL` on stdout, and the full JSON log in `$SEGFLOW_STACK_DIR/logs/segflow.log`. `json`: JSON lines on stdout. `auto`: `pretty` when stdout is a terminal and `CI` is not set, else `json`.',
    ),
  SEGFLOW_LOG_FILE_LEVEL: logLevel.default('debug').describe('Level of the JSON log file written when `SEGFLOW_LOG_FORMAT` is `pretty`.'),

  TEMPORAL_ADDRESS: hostPort.default('127.0.0.1:7233').describe('Temporal frontend, `host:port`.'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default').describe('Temporal namespace.'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('segflow').describe('Task queue the workers poll and DAG runs are started on.'),
  TEMPORAL_UI_URL: httpUrl
    .default('http://127.0.0.1:8233')
    .describe('Base URL of the Temporal Web UI, for the links in alerts, logs and the `npm start` banner.'),
  TEMPORAL_API_KEY: optionalString.describe('Temporal Cloud API key; turns TLS on.'),
  TEMPORAL_TLS: bool.default(false).describe('TLS to Temporal without client certificates.'),
  TEMPORAL_TLS_CERT_PATH: optionalString.describe('mTLS client certificate file; set together with `TEMPORAL_TLS_KEY_PATH`, or neither.'),
  TEMPORAL_TLS_KEY_PATH: optionalString.describe('mTLS client key file; set together with `TEMPORAL_TLS_CERT_PATH`, or neither.'),
  TEMPORAL_TLS_SERVER_NAME: optionalString.describe('TLS server name override.'),

  GCP_PROJECT: z
    .string()
    .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'expected a GCP project id')
    .default('segflow-local')
    .describe('Google Cloud project id.'),
  GCP_LOCATION: z.string().min(1).default('US').describe('BigQuery location.'),
  PUBSUB_EMULATOR_HOST: optionalString
    .pipe(hostPort.optional())
    .describe('Pub/Sub emulator, `host:port`. Unset: `127.0.0.1:8085` when `SEGFLOW_ENV=local`, real Pub/Sub in production.'),
  FIRESTORE_EMULATOR_HOST: optionalString
    .pipe(hostPort.optional())
    .describe('Firestore emulator, `host:port`. Unset: `127.0.0.1:8086` when `SEGFLOW_ENV=local`, real Firestore in production.'),
  SEGFLOW_GCS_ENDPOINT: optionalString
    .pipe(httpUrl.optional())
    .describe(
      'GCS emulator endpoint, passed to the client as `apiEndpoint`. Unset: `http://127.0.0.1:4443` when `SEGFLOW_ENV=local`, real GCS in production. Do not set `STORAGE_EMULATOR_HOST` for segflow: the client then builds wrong URLs.',
    ),
  SEGFLOW_BIGQUERY_ENDPOINT: optionalString
    .pipe(httpUrl.optional())
    .describe(
      'BigQuery emulator endpoint, passed to the client as `apiEndpoint`. Unset: `http://127.0.0.1:9050` when `SEGFLOW_ENV=local`, real BigQuery in production. Do not set `BIGQUERY_EMULATOR_HOST` for segflow.',
    ),

  SEGFLOW_EVENTS_TOPIC: z.string().min(1).default('customer-events').describe('Pub/Sub topic producers publish customer events to.'),
  SEGFLOW_LAKE_SUBSCRIPTION: z
    .string()
    .min(1)
    .default('events-lake')
    .describe('Subscription the lake ingestion reads (workflow `ingest/<subscription>`).'),
  SEGFLOW_TRIGGER_SUBSCRIPTION: z
    .string()
    .min(1)
    .default('events-triggers')
    .describe('Subscription of key events (purchase, profile_update) for real-time reclassification.'),
  SEGFLOW_LAKE_BUCKET: bucketName.default('segflow-lake').describe('GCS bucket of the lake, the quarantine and the model artifacts.'),
  SEGFLOW_DATASET_RAW: identifier.default('raw').describe('BigQuery dataset of the loaded lake events (`raw.events`).'),
  SEGFLOW_DATASET_STAGING: identifier.default('staging').describe('BigQuery dataset of the staging models (`staging.events`).'),
  SEGFLOW_DATASET_MARTS: identifier.default('marts').describe('BigQuery dataset of facts, features, segments and models.'),
  SEGFLOW_FIRESTORE_PROFILES: z
    .string()
    .min(1)
    .default('customer_profiles')
    .describe('Firestore collection of the online customer profiles.'),
  SEGFLOW_PRIVACY_SALT: optionalString.describe(
    'Secret salt of the customer id hashes in the suppression list and the forget audit records, at least 16 characters. Unset: a fixed local value when `SEGFLOW_ENV=local`; required in production. Never change it once customers are forgotten: the suppression list is keyed by these hashes.',
  ),
  SEGFLOW_FORGET_SETTLE_S: z.coerce
    .number()
    .int()
    .min(0)
    .max(600)
    .default(15)
    .describe(
      'Seconds a forget request waits after suppressing its ids before deleting, so ingestion batches validated before the suppression reached every worker are written (and then removed) first.',
    ),

  SEGFLOW_INGEST_BATCH_SIZE: z.coerce.number().int().min(1).max(1000).default(1000).describe('Messages per ingestion batch, at most.'),
  SEGFLOW_INGEST_MAX_WAIT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(60_000)
    .default(2000)
    .describe('Longest a batch waits to fill, in milliseconds.'),
  SEGFLOW_INGEST_ACK_DEADLINE_S: z.coerce
    .number()
    .int()
    .min(10)
    .max(600)
    .default(60)
    .describe(
      'Ack deadline (seconds) of the lake subscription when segflow creates it; a worker holds its leases this long and renews them while it lives.',
    ),
  SEGFLOW_INGEST_CONCURRENCY: z.coerce.number().int().min(1).max(32).default(2).describe('Ingestion batch activities in flight.'),
  SEGFLOW_INGEST_RUN_FOR_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(120_000)
    .default(10_000)
    .describe('How long one batch activity keeps taking batches while messages flow, in milliseconds; `0`: one batch per activity.'),
  SEGFLOW_INGEST_WRITES_IN_FLIGHT: z.coerce
    .number()
    .int()
    .min(1)
    .max(16)
    .default(2)
    .describe('Batches one activity validates and writes at once while it pulls the next.'),
  SEGFLOW_INGEST_BATCH_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(1_073_741_824)
    .default(16_777_216)
    .describe(
      'Message data one batch takes at most, in bytes; the rest waits for the next batch. Flow control holds at most this x concurrency x (writes in flight + 2) per worker.',
    ),
  SEGFLOW_LAKE_OBJECT_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(4_294_967_296)
    .default(33_554_432)
    .describe('Uncompressed NDJSON bytes per lake object; a batch over it is split into several objects.'),
  SEGFLOW_INGEST_ALERT_LAG_S: z.coerce
    .number()
    .min(0)
    .default(900)
    .describe('Ingestion lag (seconds) that raises an `ingestion_lag` alert; `0` turns it off.'),
  SEGFLOW_INGEST_ALERT_QUARANTINE_SHARE: z.coerce
    .number()
    .min(0)
    .max(1)
    .default(0.05)
    .describe('Share of messages quarantined over the window that raises a quarantine-rate alert; `1` turns it off.'),
  SEGFLOW_INGEST_ALERT_WINDOW_S: z.coerce
    .number()
    .int()
    .min(1)
    .max(86_400)
    .default(300)
    .describe('Window of the quarantine rate, in seconds.'),
  SEGFLOW_INGEST_ALERT_MIN_MESSAGES: z.coerce
    .number()
    .int()
    .min(1)
    .default(100)
    .describe('A window with fewer messages than this is not judged.'),
  SEGFLOW_EVENT_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(256)
    .max(10_000_000)
    .default(65_536)
    .describe('Larger messages are quarantined verbatim (`too_large`).'),
  SEGFLOW_EVENT_MAX_FUTURE_SKEW_S: z.coerce
    .number()
    .int()
    .min(0)
    .default(300)
    .describe('Events timed further than this many seconds in the future are quarantined (`future_timestamp`).'),
  SEGFLOW_EVENT_CONTRACT_EXTENSIONS: z
    .string()
    .optional()
    .describe(
      'Additions to the event contract, as JSON: `{"enumValues": {"profile_update.income_band": ["mid"]}, "maxLength": {"profile_update.city": 256}}`. ' +
        'Read by the validator, `npm run schema:events` and `ops quarantine replay`; see docs/ingestion.md#contract-extensions.',
    ),

  SEGFLOW_WEBHOOKS: optionalString.describe(
    'Segment-change webhook subscribers: a JSON array of `{id, url, secret, filter?, timeout_ms?}` (docs/realtime.md).',
  ),
  SEGFLOW_RECLASSIFY_IDLE_MINUTES: z.coerce
    .number()
    .positive()
    .max(1440)
    .default(10)
    .describe('A customer reclassification workflow ends after this many minutes without events.'),
  SEGFLOW_ALERT_WEBHOOK_URLS: optionalString.describe(
    'Comma-separated http(s) URLs that get every alert as JSON (with a Slack-compatible `text` field).',
  ),
  SEGFLOW_ALERT_SLACK_WEBHOOK_URL: optionalString
    .pipe(httpUrl.optional())
    .describe('Slack incoming webhook that gets every alert as a formatted message.'),
  SEGFLOW_ALERT_PAGERDUTY_ROUTING_KEY: optionalString.describe('PagerDuty Events v2 routing key; set it to page.'),
  SEGFLOW_ALERT_PAGERDUTY_URL: httpUrl.default('https://events.pagerduty.com/v2/enqueue').describe('PagerDuty Events v2 enqueue endpoint.'),
  SEGFLOW_ALERT_PAGERDUTY_MIN_SEVERITY: z
    .enum(['critical', 'error', 'warning', 'info'])
    .default('error')
    .describe('Alerts below this severity do not page.'),

  SEGFLOW_SCHEDULE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]*$/, 'expected letters, digits, _ . - (or empty)')
    .default('')
    .describe('Prefix of schedule ids and run workflow ids, so several deployments (or test runs) share one namespace.'),
  SEGFLOW_HOURLY_MINUTE: z.coerce
    .number()
    .int()
    .min(0)
    .max(59)
    .default(5)
    .describe('Minute past each hour at which `hourly_pipeline` runs for the previous hour.'),
  SEGFLOW_NIGHTLY_TIME: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM (24h), for example 02:00')
    .default('02:00')
    .describe('Time of day (`HH:MM`, 24 h) at which `nightly_segmentation` runs for the previous day.'),
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
    .default('UTC')
    .describe('IANA time zone of `SEGFLOW_NIGHTLY_TIME`, for example `Europe/Berlin`.'),

  SEGFLOW_API_PORT: z.coerce.number().int().min(0).max(65535).default(8080).describe('Profile API port.'),
  SEGFLOW_API_TOKENS: optionalString.describe(
    'Comma-separated bearer tokens of the profile API, at least 12 characters each. Unset: `local-dev-token` when `SEGFLOW_ENV=local`; required in production.',
  ),
  SEGFLOW_METRICS_PORT: z.coerce
    .number()
    .int()
    .min(0)
    .max(65535)
    .default(9464)
    .describe('Prometheus metrics: the Temporal SDK metrics on this port, segflow metrics on the next one; `0` turns both off.'),

  SEGFLOW_SEGMENTATION_CONFIG: optionalString.describe(
    'The segmentation configuration file (JSON: features, k range, thresholds, promotion policy, cohesion gate; docs/segmentation.md#configuration), read by the workers and `npm run segment`. Unset: `config/segmentation.json`. Each `SEGFLOW_SEGMENT_*` variable below overrides its setting in the file.',
  ),
  SEGFLOW_SEGMENT_FEATURES: optionalString.describe(
    'Overrides `features` of the segmentation file: a JSON array of `{name, weight, kind?, log?, role?, top?, categories?, levels?}` over `marts.customer_features` columns. Unset: the file, else the built-in list (docs/segmentation.md#features).',
  ),
  SEGFLOW_MODEL_POINTER_TTL_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(3_600_000)
    .default(5_000)
    .describe(
      'How often a worker re-reads `models/segmentation/current.json` (at most; only when it reclassifies), so a promotion or rollback reaches the real-time path within this long without a restart. The API reads it on every request.',
    ),
  SEGFLOW_SEGMENT_ALGORITHM: z
    .enum(['kmeans', 'hierarchical'])
    .default('kmeans')
    .describe(
      "How `choose_k` and `train` find the segments: `kmeans`, or `hierarchical` (Ward on a sample, centroids = the cut groups' means; docs/segmentation.md#choosing-an-algorithm).",
    ),
  SEGFLOW_SEGMENT_HIERARCHICAL_SAMPLE: z.coerce
    .number()
    .int()
    .min(10)
    .max(5_000)
    .default(1000)
    .describe('`hierarchical` only: training rows the Ward tree is built on (its cost grows with the cube of this).'),
  SEGFLOW_SEGMENT_K_MIN: z.coerce
    .number()
    .int()
    .min(1)
    .max(100)
    .default(2)
    .describe('Fewest segments `choose_k` tries; at most `SEGFLOW_SEGMENT_K_MAX`.'),
  SEGFLOW_SEGMENT_K_MAX: z.coerce.number().int().min(1).max(100).default(12).describe('Most segments `choose_k` tries.'),
  SEGFLOW_SEGMENT_SAMPLE_SIZE: z.coerce
    .number()
    .int()
    .min(10)
    .optional()
    .describe('Customers in the training sample. Unset: 5% of the customers, 5,000 to 50,000.'),
  SEGFLOW_SEGMENT_PAGE_SIZE: z.coerce
    .number()
    .int()
    .min(100)
    .max(100_000)
    .default(10_000)
    .describe('Rows per page when `extract` reads every customer.'),
  SEGFLOW_SEGMENT_MIN_SEGMENT_SHARE: z.coerce
    .number()
    .min(0)
    .max(1)
    .default(0.02)
    .describe('A k whose smallest segment holds less than this share of the customers is not chosen.'),
  SEGFLOW_SEGMENT_SILHOUETTE_SAMPLE: z.coerce
    .number()
    .int()
    .min(10)
    .max(20_000)
    .default(2000)
    .describe('Rows the silhouette of each candidate k is computed on.'),
  SEGFLOW_SEGMENT_K_TOLERANCE: z.coerce
    .number()
    .min(0)
    .max(1)
    .default(0.01)
    .describe('`choose_k` takes the smallest k whose mean silhouette is at most this below the best k that was not refused.'),
  SEGFLOW_SEGMENT_STABILITY_RESAMPLES: z.coerce
    .number()
    .int()
    .min(2)
    .max(50)
    .default(4)
    .describe('Bootstrap resamples per candidate k; its stability is the mean adjusted Rand index over every pair of their fits.'),
  SEGFLOW_SEGMENT_STABILITY_SAMPLE: z.coerce
    .number()
    .int()
    .min(10)
    .max(50_000)
    .default(1000)
    .describe('Training rows the bootstrap resamples of each candidate k are drawn from.'),
  SEGFLOW_SEGMENT_MIN_K_STABILITY: z.coerce
    .number()
    .min(-1)
    .max(1)
    .default(0.8)
    .describe('A k whose bootstrap stability is below this is refused when a smaller k reaches it (its extra segments do not reproduce).'),
  SEGFLOW_SEGMENT_MIN_SEGMENT_SILHOUETTE: z.coerce
    .number()
    .min(-1)
    .max(1)
    .default(0)
    .describe(
      'Cohesion gate: a model with a segment whose mean silhouette is below this is held and alerted on, whatever the promotion policy.',
    ),
  SEGFLOW_SEGMENT_MIN_SILHOUETTE: z.coerce
    .number()
    .min(-1)
    .max(1)
    .default(0.2)
    .describe('Cohesion gate: a model whose mean silhouette is below this is held and alerted on, whatever the promotion policy.'),
  SEGFLOW_SEGMENT_PARENTS_MIN: z.coerce
    .number()
    .int()
    .min(1)
    .default(2)
    .describe('Fewest parent segments the hierarchy over the segments keeps (nested segments; at most the number of segments).'),
  SEGFLOW_SEGMENT_PARENTS_MAX: z.coerce
    .number()
    .int()
    .min(1)
    .default(4)
    .describe('Most parent segments; between the two, the cut before the largest jump in Ward merge cost (docs/segmentation.md).'),
  SEGFLOW_SEGMENT_N_INIT: z.coerce
    .number()
    .int()
    .min(1)
    .max(50)
    .default(4)
    .describe('k-means++ restarts per candidate k in `choose_k`, and as many again in `train`.'),
  SEGFLOW_SEGMENT_SEED: z.coerce
    .number()
    .int()
    .min(0)
    .default(20261126)
    .describe('Seed of sampling and training: the same seed and data give the same model.'),
  SEGFLOW_SEGMENT_MAX_CHANGED_SHARE: z.coerce
    .number()
    .min(0)
    .max(1)
    .default(0.15)
    .describe('Stability: most customers allowed to change segment against the current model, as a share.'),
  SEGFLOW_SEGMENT_MIN_ARI: z.coerce
    .number()
    .min(-1)
    .max(1)
    .default(0.7)
    .describe('Stability: least adjusted Rand index allowed between the current and the new assignment.'),
  SEGFLOW_SEGMENT_MAX_CENTROID_DRIFT: z.coerce
    .number()
    .min(0)
    .default(0.25)
    .describe('Stability: largest move of a matched centroid allowed, in the scaled feature space.'),
  SEGFLOW_SEGMENT_MAX_SIZE_SHIFT: z.coerce
    .number()
    .min(0)
    .max(1)
    .default(0.05)
    .describe('Stability: largest change of one segment share allowed, absolute (0.05 = 5 points).'),
  SEGFLOW_SEGMENT_ALLOW_SEGMENT_CHANGES: bool
    .default(false)
    .describe('Stability: whether segments may appear or disappear without counting as a breach.'),
  SEGFLOW_SEGMENT_PROMOTION_POLICY: z
    .enum(['promote_with_alert', 'hold'])
    .default('promote_with_alert')
    .describe(
      'What happens to a new model beyond a stability threshold: `promote_with_alert` makes it current and alerts; `hold` alerts and keeps the current model serving.',
    ),
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
    /** Configured widening of the event contract (SEGFLOW_EVENT_CONTRACT_EXTENSIONS). */
    contractExtensions: ContractExtensions;
  };
  warehouse: { raw: string; staging: string; marts: string };
  firestore: { profiles: string };
  /** Forgetting customers (docs/privacy.md): the salt of the id hashes, and the wait between suppressing and deleting. */
  privacy: { salt: string; settleMs: number };
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
  /**
   * Nightly segmentation (dags/nightly-segmentation.ts): the segmentation file (SEGMENTATION_SETTINGS
   * names its fields), each setting overridden by its environment variable; features default to
   * core/segmentation/features.ts.
   */
  segmentation: {
    features: FeatureSpec[];
    algorithm: 'kmeans' | 'hierarchical';
    /** Rows the Ward tree is built on when algorithm is hierarchical. */
    hierarchicalSampleSize: number;
    kMin: number;
    kMax: number;
    /** Training sample; unset: 5% of the customers, 5,000 to 50,000 (defaultSampleSize in core/segmentation/job.ts). */
    sampleSize?: number;
    pageSize: number;
    minSegmentShare: number;
    silhouetteSampleSize: number;
    /** choose_k: the smallest k within this of the best silhouette, bootstrap resamples and rows, the stability floor. */
    kTolerance: number;
    stabilityResamples: number;
    stabilitySampleSize: number;
    minKStability: number;
    /** The cohesion gate (core/segmentation/cohesion-gate.ts). */
    cohesion: { minSegmentSilhouette: number; minSilhouette: number };
    /** Nested segments: how many parent groups (core/segmentation/hierarchy.ts). */
    parentSegments: { min: number; max: number };
    nInit: number;
    seed: number;
    thresholds: {
      maxChangedShare: number;
      minAdjustedRandIndex: number;
      maxCentroidDrift: number;
      maxSizeShift: number;
      allowSegmentChanges: boolean;
    };
    promotionPolicy: 'promote_with_alert' | 'hold';
    /** How often the real-time path re-reads current.json. */
    modelPointerTtlMs: number;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `Invalid segflow configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  - ${p}`).join('\n') +
        '\nFix these settings (see docs/configuration.md) and start again.',
    );
    this.name = 'ConfigError';
  }
}

/** The segmentation file's content, already read and parsed as JSON by its caller (core does no I/O). */
export interface SegmentationFile {
  /** For messages, e.g. `config/segmentation.json`. */
  path: string;
  content: unknown;
}

type SettingType = 'number' | 'boolean' | 'string' | 'features';

/**
 * Every field of the segmentation file (the names of `Config['segmentation']`, nested ones
 * dotted), the environment variable that overrides it, and its JSON type. The file is validated
 * by the same schema as the variables, so a setting has one rule wherever it comes from.
 */
export const SEGMENTATION_SETTINGS: Readonly<Record<string, readonly [keyof typeof envSchema.shape, SettingType]>> = {
  features: ['SEGFLOW_SEGMENT_FEATURES', 'features'],
  kMin: ['SEGFLOW_SEGMENT_K_MIN', 'number'],
  kMax: ['SEGFLOW_SEGMENT_K_MAX', 'number'],
  sampleSize: ['SEGFLOW_SEGMENT_SAMPLE_SIZE', 'number'],
  pageSize: ['SEGFLOW_SEGMENT_PAGE_SIZE', 'number'],
  minSegmentShare: ['SEGFLOW_SEGMENT_MIN_SEGMENT_SHARE', 'number'],
  silhouetteSampleSize: ['SEGFLOW_SEGMENT_SILHOUETTE_SAMPLE', 'number'],
  kTolerance: ['SEGFLOW_SEGMENT_K_TOLERANCE', 'number'],
  stabilityResamples: ['SEGFLOW_SEGMENT_STABILITY_RESAMPLES', 'number'],
  stabilitySampleSize: ['SEGFLOW_SEGMENT_STABILITY_SAMPLE', 'number'],
  minKStability: ['SEGFLOW_SEGMENT_MIN_K_STABILITY', 'number'],
  'cohesion.minSegmentSilhouette': ['SEGFLOW_SEGMENT_MIN_SEGMENT_SILHOUETTE', 'number'],
  'cohesion.minSilhouette': ['SEGFLOW_SEGMENT_MIN_SILHOUETTE', 'number'],
  nInit: ['SEGFLOW_SEGMENT_N_INIT', 'number'],
  seed: ['SEGFLOW_SEGMENT_SEED', 'number'],
  'thresholds.maxChangedShare': ['SEGFLOW_SEGMENT_MAX_CHANGED_SHARE', 'number'],
  'thresholds.minAdjustedRandIndex': ['SEGFLOW_SEGMENT_MIN_ARI', 'number'],
  'thresholds.maxCentroidDrift': ['SEGFLOW_SEGMENT_MAX_CENTROID_DRIFT', 'number'],
  'thresholds.maxSizeShift': ['SEGFLOW_SEGMENT_MAX_SIZE_SHIFT', 'number'],
  'thresholds.allowSegmentChanges': ['SEGFLOW_SEGMENT_ALLOW_SEGMENT_CHANGES', 'boolean'],
  promotionPolicy: ['SEGFLOW_SEGMENT_PROMOTION_POLICY', 'string'],
  algorithm: ['SEGFLOW_SEGMENT_ALGORITHM', 'string'],
  hierarchicalSampleSize: ['SEGFLOW_SEGMENT_HIERARCHICAL_SAMPLE', 'number'],
  'parentSegments.min': ['SEGFLOW_SEGMENT_PARENTS_MIN', 'number'],
  'parentSegments.max': ['SEGFLOW_SEGMENT_PARENTS_MAX', 'number'],
  modelPointerTtlMs: ['SEGFLOW_MODEL_POINTER_TTL_MS', 'number'],
};

function jsonType(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/**
 * The file's settings as the environment variables they stand for (values as strings), and the
 * file's own problems (unknown fields, wrong JSON types), each named by its field.
 */
function segmentationFileEnv(file: SegmentationFile): { env: RawEnv; origin: Map<string, string>; problems: string[] } {
  const env: RawEnv = {};
  const origin = new Map<string, string>();
  const problems: string[] = [];
  const walk = (value: unknown, prefix: string) => {
    if (jsonType(value) !== 'object') {
      problems.push(`${file.path}${prefix ? `: ${prefix}` : ''}: expected an object, found ${jsonType(value)}`);
      return;
    }
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      const field = prefix ? `${prefix}.${key}` : key;
      if (key === '$schema' || key === 'description') continue;
      const setting = SEGMENTATION_SETTINGS[field];
      if (setting === undefined) {
        if (Object.keys(SEGMENTATION_SETTINGS).some((f) => f.startsWith(`${field}.`))) walk(v, field);
        else problems.push(`${file.path}: ${field}: unknown setting (expected one of ${Object.keys(SEGMENTATION_SETTINGS).join(', ')})`);
        continue;
      }
      const [name, type] = setting;
      const expected = type === 'features' ? 'array' : type;
      if (jsonType(v) !== expected) {
        problems.push(`${file.path}: ${field}: expected a JSON ${expected}, found ${jsonType(v)}`);
        continue;
      }
      env[name] = type === 'features' ? JSON.stringify(v) : String(v);
      origin.set(name, field);
    }
  };
  walk(file.content, '');
  return { env, origin, problems };
}

/**
 * Validate an environment (and the segmentation file's content, if any) and build the typed
 * configuration. Pure: no I/O. A variable that is set overrides its setting in the file.
 */
export function parseConfig(rawEnv: RawEnv, segmentationFile?: SegmentationFile): Config {
  const fromFile = segmentationFile ? segmentationFileEnv(segmentationFile) : { env: {}, origin: new Map<string, string>(), problems: [] };
  const env: RawEnv = { ...fromFile.env };
  for (const [k, v] of Object.entries(rawEnv)) if (v !== undefined) env[k] = v;
  /** Where a setting came from, for messages: the file's field unless its variable is set. */
  const nameOf = (name: string) => {
    const field = fromFile.origin.get(name);
    return field !== undefined && rawEnv[name] === undefined ? `${segmentationFile!.path}: ${field}` : name;
  };
  const parsed = envSchema.safeParse(env);
  const problems: string[] = [...fromFile.problems];
  if (!parsed.success) {
    problems.push(
      ...parsed.error.issues.map((issue) => {
        const name = String(issue.path[0] ?? '(environment)');
        const found = env[name];
        return `${nameOf(name)}: ${issue.message}${found === undefined ? ' (not set)' : ` (found ${JSON.stringify(redactValue(name, found))})`}`;
      }),
    );
  }
  let features: FeatureSpec[] = DEFAULT_SEGMENT_FEATURES;
  if (env.SEGFLOW_SEGMENT_FEATURES !== undefined && env.SEGFLOW_SEGMENT_FEATURES !== '') {
    let json: unknown;
    try {
      json = JSON.parse(env.SEGFLOW_SEGMENT_FEATURES);
    } catch {
      problems.push(`${nameOf('SEGFLOW_SEGMENT_FEATURES')}: expected a JSON array of {"name", "weight", "kind"?, ...}`);
    }
    if (json !== undefined) {
      const list = FeatureSpecListSchema.safeParse(json);
      if (list.success) features = list.data;
      else {
        const from = nameOf('SEGFLOW_SEGMENT_FEATURES');
        // seg.json: features.1.weight, or SEGFLOW_SEGMENT_FEATURES: 1.weight
        const at = (p: PropertyKey[]) => (from === 'SEGFLOW_SEGMENT_FEATURES' ? `${from}: ${p.join('.')}` : [from, ...p].join('.'));
        problems.push(...list.error.issues.map((i) => `${at(i.path)}: ${i.message}`));
      }
    }
  }
  if (!parsed.success) throw new ConfigError(problems);
  const e = parsed.data;
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
  const privacySalt = e.SEGFLOW_PRIVACY_SALT ?? (local ? 'segflow-local-privacy-salt' : '');
  if (!local && privacySalt === '')
    problems.push('SEGFLOW_PRIVACY_SALT: required in production (a secret of 16+ characters for the forget hashes)');
  else if (privacySalt.length < 16) problems.push('SEGFLOW_PRIVACY_SALT: expected at least 16 characters');
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
    problems.push(
      `${nameOf('SEGFLOW_SEGMENT_K_MIN')} and ${nameOf('SEGFLOW_SEGMENT_K_MAX')}: expected kMin <= kMax, found ${e.SEGFLOW_SEGMENT_K_MIN} > ${e.SEGFLOW_SEGMENT_K_MAX}`,
    );
  }
  if (e.SEGFLOW_SEGMENT_PARENTS_MIN > e.SEGFLOW_SEGMENT_PARENTS_MAX) {
    problems.push(
      `${nameOf('SEGFLOW_SEGMENT_PARENTS_MIN')} and ${nameOf('SEGFLOW_SEGMENT_PARENTS_MAX')}: expected min <= max, found ${e.SEGFLOW_SEGMENT_PARENTS_MIN} > ${e.SEGFLOW_SEGMENT_PARENTS_MAX}`,
    );
  }
  const contractExtensions = parseContractExtensions(e.SEGFLOW_EVENT_CONTRACT_EXTENSIONS);
  if (!contractExtensions.ok) problems.push(...contractExtensions.problems.map((p) => `SEGFLOW_EVENT_CONTRACT_EXTENSIONS: ${p}`));
  if (problems.length > 0 || !contractExtensions.ok) throw new ConfigError(problems);

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
      contractExtensions: contractExtensions.value,
    },
    warehouse: { raw: e.SEGFLOW_DATASET_RAW, staging: e.SEGFLOW_DATASET_STAGING, marts: e.SEGFLOW_DATASET_MARTS },
    firestore: { profiles: e.SEGFLOW_FIRESTORE_PROFILES },
    privacy: { salt: privacySalt, settleMs: e.SEGFLOW_FORGET_SETTLE_S * 1000 },
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
      features,
      algorithm: e.SEGFLOW_SEGMENT_ALGORITHM,
      hierarchicalSampleSize: e.SEGFLOW_SEGMENT_HIERARCHICAL_SAMPLE,
      kMin: e.SEGFLOW_SEGMENT_K_MIN,
      kMax: e.SEGFLOW_SEGMENT_K_MAX,
      ...(e.SEGFLOW_SEGMENT_SAMPLE_SIZE !== undefined ? { sampleSize: e.SEGFLOW_SEGMENT_SAMPLE_SIZE } : {}),
      pageSize: e.SEGFLOW_SEGMENT_PAGE_SIZE,
      minSegmentShare: e.SEGFLOW_SEGMENT_MIN_SEGMENT_SHARE,
      silhouetteSampleSize: e.SEGFLOW_SEGMENT_SILHOUETTE_SAMPLE,
      kTolerance: e.SEGFLOW_SEGMENT_K_TOLERANCE,
      stabilityResamples: e.SEGFLOW_SEGMENT_STABILITY_RESAMPLES,
      stabilitySampleSize: e.SEGFLOW_SEGMENT_STABILITY_SAMPLE,
      minKStability: e.SEGFLOW_SEGMENT_MIN_K_STABILITY,
      cohesion: { minSegmentSilhouette: e.SEGFLOW_SEGMENT_MIN_SEGMENT_SILHOUETTE, minSilhouette: e.SEGFLOW_SEGMENT_MIN_SILHOUETTE },
      parentSegments: { min: e.SEGFLOW_SEGMENT_PARENTS_MIN, max: e.SEGFLOW_SEGMENT_PARENTS_MAX },
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
      modelPointerTtlMs: e.SEGFLOW_MODEL_POINTER_TTL_MS,
    },
  };
}

// Webhook URLs (Slack's above all) are credentials: whoever has one can post.
const SECRET_NAME = /KEY|TOKEN|SECRET|PASSWORD|WEBHOOK|SALT/i;

function redactValue(name: string, value: string): string {
  return SECRET_NAME.test(name) ? '[redacted]' : value;
}

/** The env file written by `npm run stack:up`; read so every command finds the local stack. */
export function stackEnvFile(root = PROJECT_ROOT): string {
  return path.join(process.env.SEGFLOW_STACK_DIR ?? path.join(root, '.stack'), 'env');
}

/**
 * Read `.stack/env` (if any) under the real environment, then validate, with the segmentation
 * file's content when the caller read it (workers/segmentation-config.ts).
 */
export function loadConfig(env: RawEnv = process.env, segmentationFile?: SegmentationFile): Config {
  const file = stackEnvFile();
  const fromFile = existsSync(file) ? parseEnv(readFileSync(file, 'utf8')) : {};
  return parseConfig({ ...fromFile, ...env }, segmentationFile);
}

/** loadConfig for command-line entry points: a bad setting prints the one message and exits 1. */
export function loadConfigOrExit(env: RawEnv = process.env, segmentationFile?: SegmentationFile): Config {
  try {
    return loadConfig(env, segmentationFile);
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
    [
      config.gcp.pubsubEmulatorHost,
      config.gcp.firestoreEmulatorHost,
      hostOf(config.gcp.gcsEndpoint),
      hostOf(config.gcp.bigqueryEndpoint),
    ].every((h) => h !== undefined && loopback.test(h))
  );
}
