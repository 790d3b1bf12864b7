/**
 * The nightly_segmentation DAG's activities (dags/nightly_segmentation.ts), and the model
 * store the real-time path reads (`loadCurrentModel`).
 *
 * Storage layout (bucket = SEGFLOW_LAKE_BUCKET):
 *   models/segmentation/<version>.json              the model artifact (SegmentModelSchema)
 *   models/segmentation/current.json                {"version", "uri"}: the one-step promotion switch
 *   models/segmentation/runs/<version>/<step>.json  what each task leaves for the next
 * Warehouse (dataset = SEGFLOW_DATASET_MARTS): segment_models (registry), customer_segments
 * (one row per customer per version), segment_stability (one row per candidate version).
 *
 * Each task first looks for its own output under runs/<version>/ and returns it when present,
 * so a retried or rerun task repeats nothing; BigQuery writes are delete-then-insert by
 * version (the emulator rejects repeated job ids, so idempotency never rests on those).
 * Customer rows never leave BigQuery except the training sample.
 */
import type { BigQuery, TableField } from '@google-cloud/bigquery';
import type { Storage } from '@google-cloud/storage';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { alertDedupKey, type Alert } from '../core/alerts.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { qualifiedTable } from '../elt/names.js';
import {
  FeatureSpecListSchema,
  KSelectionError,
  PreparationSchema,
  KSelectionSchema,
  assignmentSql,
  checkCohesion,
  checkStability,
  cohesionFigures,
  decideRelease,
  defaultRestartRows,
  defaultSampleSize,
  deriveSeed,
  describeSegments,
  fitPreparation,
  parseSegmentModel,
  prepareMatrix,
  relabelFromCurrent,
  selectK,
  stabilityFigures,
  trainKMeans,
  type ContingencyCell,
  type FeatureRow,
  type FeatureSpec,
  type SegmentModel,
  type StabilityBreach,
  type StabilityFigures,
} from '../core/segmentation/index.js';
import { NIGHTLY_SEGMENTATION_DAG } from '../core/dag-ids.js';
import { modelVersionFor } from '../core/segmentation/model.js';
import type { DagTaskInput } from '../core/dag-task.js';
import { createAlertActivities } from './alerts.js';

export const MODELS_PREFIX = 'models/segmentation';
export const CURRENT_MODEL_OBJECT = `${MODELS_PREFIX}/current.json`;

export function modelObjectName(version: string): string {
  return `${MODELS_PREFIX}/${version}.json`;
}

export function runObjectName(version: string, step: string): string {
  return `${MODELS_PREFIX}/runs/${version}/${step}.json`;
}

/**
 * Columns of marts.customer_features, chosen so the demo personas separate (ARI >= 0.9 on their
 * features, test/integration/segmentation.test.ts). Money and counts are log-scaled.
 * Override with SEGFLOW_SEGMENT_FEATURES (same JSON shape).
 */
export const DEFAULT_SEGMENT_FEATURES: FeatureSpec[] = [
  { name: 'recency_days', weight: 1, role: 'recency' },
  { name: 'frequency', weight: 1, log: true, role: 'frequency' },
  { name: 'monetary', weight: 1, log: true, role: 'monetary' },
  { name: 'sessions_per_week', weight: 1, log: true, role: 'browse' },
  { name: 'pages_per_session', weight: 1, log: true, role: 'browse' },
  { name: 'avg_time_on_page_ms', weight: 1, log: true },
  { name: 'cart_adds', weight: 0.5, log: true, role: 'cart' },
  { name: 'email_open_rate', weight: 1, role: 'email' },
  { name: 'email_ctr', weight: 1, role: 'email' },
  { name: 'app_sessions', weight: 1, log: true, role: 'app' },
];

export function segmentFeatures(config: Config): FeatureSpec[] {
  if (config.segmentation.featuresJson === undefined) return DEFAULT_SEGMENT_FEATURES;
  const parsed = FeatureSpecListSchema.safeParse(JSON.parse(config.segmentation.featuresJson));
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(
      `SEGFLOW_SEGMENT_FEATURES is not a valid feature list: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      'InvalidSegmentationSettings',
    );
  }
  return parsed.data;
}

// ---------------------------------------------------------------- warehouse tables

export const SEGMENT_MODELS_SCHEMA: TableField[] = [
  { name: 'version', type: 'STRING', mode: 'REQUIRED' },
  { name: 'created_at', type: 'TIMESTAMP', mode: 'REQUIRED' },
  { name: 'uri', type: 'STRING', mode: 'REQUIRED' },
  { name: 'k', type: 'INT64', mode: 'REQUIRED' },
  { name: 'is_current', type: 'BOOL', mode: 'REQUIRED' },
  { name: 'metrics', type: 'STRING', description: 'JSON: inertia, silhouette, k selection summary, training' },
  { name: 'promoted_at', type: 'TIMESTAMP' },
];

export const CUSTOMER_SEGMENTS_SCHEMA: TableField[] = [
  { name: 'customer_id', type: 'STRING', mode: 'REQUIRED' },
  { name: 'model_version', type: 'STRING', mode: 'REQUIRED' },
  { name: 'segment_id', type: 'INT64', mode: 'REQUIRED' },
  { name: 'segment_label', type: 'STRING' },
  { name: 'distance', type: 'FLOAT64' },
  { name: 'margin', type: 'FLOAT64' },
  { name: 'assigned_at', type: 'TIMESTAMP', mode: 'REQUIRED' },
];

export const SEGMENT_STABILITY_SCHEMA: TableField[] = [
  { name: 'model_version', type: 'STRING', mode: 'REQUIRED' },
  { name: 'previous_version', type: 'STRING' },
  { name: 'changed_share', type: 'FLOAT64' },
  { name: 'ari', type: 'FLOAT64' },
  { name: 'max_centroid_drift', type: 'FLOAT64' },
  { name: 'size_shifts', type: 'STRING', description: 'JSON array of {id, current_share, candidate_share, delta}' },
  { name: 'breaches', type: 'STRING', description: 'JSON array of stability breaches' },
  { name: 'decision', type: 'STRING', mode: 'REQUIRED', description: 'promote, promote_with_alert or hold' },
  { name: 'computed_at', type: 'TIMESTAMP', mode: 'REQUIRED' },
];

// ---------------------------------------------------------------- model store

export const CurrentModelPointerSchema = z.object({
  version: z.string().min(1),
  uri: z.string().regex(/^gs:\/\/[^/]+\/.+$/, 'expected gs://<bucket>/<object>'),
});
export type CurrentModelPointer = z.infer<typeof CurrentModelPointerSchema>;

function isNotFound(err: unknown): boolean {
  return (err as { code?: number }).code === 404;
}

async function readJson(storage: Storage, bucket: string, name: string): Promise<unknown | null> {
  try {
    const [buf] = await storage.bucket(bucket).file(name).download();
    return JSON.parse(buf.toString('utf8'));
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

async function writeJson(storage: Storage, bucket: string, name: string, value: unknown): Promise<void> {
  // One simple upload: the object appears whole or not at all, which is what makes current.json a one-step switch.
  await storage.bucket(bucket).file(name).save(JSON.stringify(value), { resumable: false, contentType: 'application/json' });
}

/** The pointer to the current model, or null before the first promotion. */
export async function loadCurrentPointer(storage: Storage, bucket: string): Promise<CurrentModelPointer | null> {
  const json = await readJson(storage, bucket, CURRENT_MODEL_OBJECT);
  if (json === null) return null;
  const parsed = CurrentModelPointerSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(
      `gs://${bucket}/${CURRENT_MODEL_OBJECT} is not {"version", "uri"}: ${parsed.error.message}. Promote a model again to rewrite it.`,
    );
  }
  return parsed.data;
}

export async function loadModelAt(storage: Storage, uri: string): Promise<SegmentModel> {
  const match = /^gs:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match) throw new Error(`expected a gs://bucket/object URI for a model, got ${JSON.stringify(uri)}`);
  const json = await readJson(storage, match[1]!, match[2]!);
  if (json === null) throw new Error(`model artifact ${uri} does not exist`);
  return parseSegmentModel(json);
}

/** The current segmentation model (what the real-time path assigns with), or null when none was promoted yet. */
export async function loadCurrentModel(storage: Storage, bucket: string): Promise<SegmentModel | null> {
  const pointer = await loadCurrentPointer(storage, bucket);
  if (pointer === null) return null;
  const model = await loadModelAt(storage, pointer.uri);
  if (model.version !== pointer.version) {
    throw new Error(`current.json names version ${pointer.version} but ${pointer.uri} holds ${model.version}`);
  }
  return model;
}

// ---------------------------------------------------------------- run state

const ExtractSchema = z.object({
  version: z.string(),
  population: z.number().int().nonnegative(),
  sampled: z.boolean(),
  /** Rows kept per million (FARM_FINGERPRINT bucket < threshold). */
  threshold: z.number().int(),
  features: z.array(z.string()),
  ids: z.array(z.string()),
  /** One array per feature, aligned with ids. */
  columns: z.array(z.array(z.number().nullable())),
});
type Extract = z.infer<typeof ExtractSchema>;

const TrainedSchema = z.object({
  k: z.number().int().positive(),
  centroids: z.array(z.array(z.number())),
  sizes: z.array(z.number().int()),
  inertia: z.number(),
  iterations: z.number().int(),
  converged: z.boolean(),
  seed: z.number().int(),
  restarts: z.number().int(),
});
type Trained = z.infer<typeof TrainedSchema>;

const KStepSchema = z.object({
  preparation: PreparationSchema,
  selection: KSelectionSchema,
  fit: TrainedSchema,
});
type KStep = z.infer<typeof KStepSchema>;

const LabelStepSchema = z.object({
  /** Carried ids and labels from this version, when there was a comparable current model. */
  relabelledFrom: z.string().nullable(),
  matches: z.array(z.object({ candidateIndex: z.number(), currentIndex: z.number().nullable(), distance: z.number().nullable() })),
});

export const StabilityStepSchema = z.object({
  version: z.string(),
  previousVersion: z.string().nullable(),
  figures: z.unknown().nullable(),
  breaches: z.array(z.object({ metric: z.string(), value: z.number(), threshold: z.number(), message: z.string() })),
  decision: z.object({ promote: z.boolean(), alert: z.boolean(), reason: z.string() }),
  decisionName: z.enum(['promote', 'promote_with_alert', 'hold']),
  alerted: z.boolean(),
});
export type StabilityStep = Omit<z.infer<typeof StabilityStepSchema>, 'figures'> & { figures: StabilityFigures | null };

export interface SegmentSize {
  segment_id: number;
  segment_label: string;
  customers: number;
  share: number;
}

// ---------------------------------------------------------------- activities

export interface SegmentationDeps {
  bigquery: BigQuery;
  storage: Storage;
  config: Config;
  logger: Logger;
  /** Alert delivery; defaults to the raiseAlert activity's implementation with the configured channels. */
  raiseAlert?: (alert: Alert) => Promise<unknown>;
}

function heartbeat(details: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // Called outside an activity (scripts, tests): nothing to heartbeat to.
  }
}

/** Keeps heartbeating while a long promise runs (a BigQuery job, for instance). */
async function withHeartbeat<T>(what: string, work: Promise<T>): Promise<T> {
  const started = Date.now();
  const timer = setInterval(() => heartbeat({ stage: what, elapsedMs: Date.now() - started }), 5_000);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

type Param = string | string[] | Date;

/** What a step stores of a k-means fit; `restarts` counts every restart behind it. */
function trainedRecord(fit: ReturnType<typeof trainKMeans>, restarts: number): Trained {
  const { k, centroids, sizes, inertia, iterations, converged, seed } = fit;
  return { k, centroids, sizes, inertia, iterations, converged, seed, restarts };
}

export function createSegmentationActivities(deps: SegmentationDeps) {
  const { bigquery, storage, config, logger } = deps;
  const bucket = config.lake.bucket;
  const marts = config.warehouse.marts;
  const project = config.gcp.projectId;
  const location = config.gcp.location;
  const settings = config.segmentation;
  const raiseAlert =
    deps.raiseAlert ??
    createAlertActivities({ logger, webhookUrls: config.alerts.webhookUrls, uiBaseUrl: config.temporal.uiUrl }).raiseAlert;
  // Checked at use, not only when the configuration was loaded: tests and tools build Config objects too.
  const table = (name: string) => qualifiedTable(project, marts, name);

  /** Numbers are bound as STRING and CAST in SQL: the emulator cannot read numeric parameter values. */
  async function query(sql: string, params: Record<string, Param> = {}): Promise<Record<string, unknown>[]> {
    const types: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(params)) types[k] = v instanceof Date ? 'TIMESTAMP' : Array.isArray(v) ? ['STRING'] : 'STRING';
    const hasParams = Object.keys(params).length > 0;
    const [job] = await bigquery.createQueryJob({ query: sql, location, ...(hasParams ? { params, types } : {}) });
    const [rows] = await withHeartbeat('query', job.getQueryResults());
    return rows as Record<string, unknown>[];
  }

  async function ensureTable(name: string, schema: TableField[]): Promise<void> {
    const dataset = bigquery.dataset(marts, { location });
    const [dsExists] = await dataset.exists();
    if (!dsExists) {
      try {
        await dataset.create();
      } catch (err) {
        if ((err as { code?: number }).code !== 409) throw err;
      }
    }
    const t = dataset.table(name);
    const [exists] = await t.exists();
    if (exists) return;
    try {
      await t.create({ schema: { fields: schema } });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
    }
  }

  function taskLog(input: DagTaskInput, version: string): Logger {
    return logger.child({ dag: input.dagId, task: input.taskId, modelVersion: version });
  }

  function versionOf(input: DagTaskInput): string {
    return modelVersionFor(input.interval.end);
  }

  async function readStep<T>(version: string, step: string, schema: z.ZodType<T>): Promise<T | null> {
    const json = await readJson(storage, bucket, runObjectName(version, step));
    return json === null ? null : schema.parse(json);
  }

  async function requireStep<T>(version: string, step: string, schema: z.ZodType<T>, producer: string): Promise<T> {
    const value = await readStep(version, step, schema);
    if (value === null) {
      throw ApplicationFailure.retryable(
        `gs://${bucket}/${runObjectName(version, step)} is missing; run task ${producer} of this interval first`,
        'MissingRunState',
      );
    }
    return value;
  }

  function extractRows(extract: Extract): FeatureRow[] {
    return extract.ids.map((_, r) => Object.fromEntries(extract.features.map((f, j) => [f, extract.columns[j]![r]!])));
  }

  async function candidateModel(version: string): Promise<SegmentModel> {
    return parseSegmentModel(await requireStep(version, 'model', z.unknown(), 'label'));
  }

  async function segmentSizes(version: string): Promise<SegmentSize[]> {
    const rows = await query(
      `SELECT segment_id, ANY_VALUE(segment_label) AS segment_label, COUNT(*) AS customers FROM ${table('customer_segments')} WHERE model_version = @v GROUP BY segment_id ORDER BY segment_id`,
      { v: version },
    );
    const total = rows.reduce((s, r) => s + Number(r.customers), 0);
    return rows.map((r) => ({
      segment_id: Number(r.segment_id),
      segment_label: String(r.segment_label),
      customers: Number(r.customers),
      share: total > 0 ? Number(r.customers) / total : 0,
    }));
  }

  return {
    /** Feature rows of every customer (in pages), or of a deterministic uniform sample when there are more than the sample size. */
    async segmentationExtract(input: DagTaskInput) {
      const version = versionOf(input);
      const log = taskLog(input, version);
      const done = await readStep(version, 'extract', ExtractSchema);
      if (done) return { version, population: done.population, rows: done.ids.length, sampled: done.sampled, reused: true };

      const features = segmentFeatures(config).map((f) => f.name);
      const source = bigquery.dataset(marts).table('customer_features');
      const [exists] = await source.exists();
      if (!exists) {
        throw ApplicationFailure.nonRetryable(
          `${marts}.customer_features does not exist; run the hourly_pipeline DAG first`,
          'NoCustomerFeatures',
        );
      }
      const [meta] = await source.getMetadata();
      const have = new Set(((meta as { schema?: { fields?: TableField[] } }).schema?.fields ?? []).map((f) => f.name));
      const missing = ['customer_id', ...features].filter((c) => !have.has(c));
      if (missing.length > 0) {
        throw ApplicationFailure.nonRetryable(
          `${marts}.customer_features lacks column(s) ${missing.join(', ')} named by the segmentation features; fix SEGFLOW_SEGMENT_FEATURES or the ELT model`,
          'InvalidSegmentationSettings',
        );
      }
      const [countRow] = await query(`SELECT COUNT(*) AS n FROM ${table('customer_features')}`);
      const population = Number(countRow?.n ?? 0);
      if (population === 0)
        throw ApplicationFailure.nonRetryable(`${marts}.customer_features is empty; nothing to segment`, 'NoCustomerFeatures');
      // Unless configured, the sample grows with the population: 5% of it, 5,000 to 50,000 customers,
      // the size bench:segment measures against scikit-learn.
      const sampleSize = settings.sampleSize ?? defaultSampleSize(population);
      const sampled = population > sampleSize;
      // A hash of (version, customer) is uniform and repeatable: a retry draws the same sample, the next night a new one.
      // (RAND() is not usable: the emulator evaluates it once per query.)
      const threshold = sampled ? Math.ceil((sampleSize / population) * 1_000_000) : 1_000_000;
      const filter = sampled ? `MOD(ABS(FARM_FINGERPRINT(CONCAT(@salt, customer_id))), 1000000) < ${threshold}` : 'TRUE';
      const select = features.map((f) => `CAST(\`${f}\` AS FLOAT64) AS \`${f}\``).join(', ');
      const ids: string[] = [];
      const columns: (number | null)[][] = features.map(() => []);
      let after = '';
      for (let page = 1; ; page++) {
        const rows = await query(
          `SELECT customer_id, ${select} FROM ${table('customer_features')} WHERE ${filter} AND customer_id > @after ORDER BY customer_id LIMIT ${settings.pageSize}`,
          { after, ...(sampled ? { salt: version } : {}) },
        );
        for (const row of rows) {
          ids.push(String(row.customer_id));
          features.forEach((f, j) => {
            const v = row[f];
            columns[j]!.push(typeof v === 'number' && Number.isFinite(v) ? v : null);
          });
        }
        heartbeat({ stage: 'extract', page, rows: ids.length });
        log.info({ page, rows: ids.length, population, sampled }, 'extracted a page of customer features');
        if (rows.length < settings.pageSize) break;
        after = ids[ids.length - 1]!;
      }
      const extract: Extract = { version, population, sampled, threshold, features, ids, columns };
      await writeJson(storage, bucket, runObjectName(version, 'extract'), extract);
      return { version, population, rows: ids.length, sampled, reused: false };
    },

    /** Fits the preparation and chooses k over the configured range (every candidate recorded). */
    async segmentationChooseK(input: DagTaskInput) {
      const version = versionOf(input);
      const log = taskLog(input, version);
      const done = await readStep(version, 'k_selection', KStepSchema);
      if (done) return { version, chosenK: done.selection.chosen_k, reused: true };
      const extract = await requireStep(version, 'extract', ExtractSchema, 'extract');
      const rows = extractRows(extract);
      const preparation = fitPreparation(rows, segmentFeatures(config));
      const dim = preparation.features.length;
      const matrix = prepareMatrix(preparation, rows);
      heartbeat({ stage: 'choose_k', rows: rows.length });
      let result;
      try {
        result = selectK(matrix, rows.length, dim, {
          seed: settings.seed,
          kMin: settings.kMin,
          kMax: settings.kMax,
          minSegmentShare: settings.minSegmentShare,
          silhouetteSampleSize: settings.silhouetteSampleSize,
          tolerance: settings.kTolerance,
          stabilityResamples: settings.stabilityResamples,
          stabilitySampleSize: settings.stabilitySampleSize,
          minStability: settings.minKStability,
          labelSegments: (centroids, sizes) => describeSegments(preparation, centroids, sizes).map((s) => s.label),
          nInit: settings.nInit,
        });
      } catch (err) {
        if (err instanceof KSelectionError) throw ApplicationFailure.nonRetryable(err.message, 'KSelectionFailed', err.candidates);
        throw err;
      }
      const { selection, fit } = result;
      const step: KStep = {
        preparation,
        selection,
        fit: trainedRecord(fit, fit.runs.length),
      };
      await writeJson(storage, bucket, runObjectName(version, 'k_selection'), step);
      log.info(
        { chosenK: selection.chosen_k, elbowK: selection.elbow_k, chosenBy: selection.chosen_by, candidates: selection.candidates },
        'k chosen',
      );
      return { version, chosenK: selection.chosen_k, elbowK: selection.elbow_k, chosenBy: selection.chosen_by, reused: false };
    },

    /** Trains the chosen k with more k-means++ restarts; the best inertia (including choose_k's fit) wins. */
    async segmentationTrain(input: DagTaskInput) {
      const version = versionOf(input);
      const log = taskLog(input, version);
      const done = await readStep(version, 'trained', TrainedSchema);
      if (done) return { version, k: done.k, inertia: done.inertia, reused: true };
      const extract = await requireStep(version, 'extract', ExtractSchema, 'extract');
      const kstep = await requireStep(version, 'k_selection', KStepSchema, 'choose_k');
      const rows = extractRows(extract);
      const matrix = prepareMatrix(kstep.preparation, rows);
      const k = kstep.selection.chosen_k;
      const fit = trainKMeans(matrix, rows.length, kstep.preparation.features.length, {
        k,
        seed: deriveSeed(settings.seed, 1_000 + k),
        nInit: settings.nInit,
        // As in bench:segment's job: the restarts run on a tenth of the sample (500 to 2,000 rows).
        restartRows: defaultRestartRows(rows.length),
      });
      const fresh: Trained = trainedRecord(fit, fit.runs.length + kstep.fit.restarts);
      const best = fresh.inertia <= kstep.fit.inertia ? fresh : { ...kstep.fit, restarts: fresh.restarts };
      await writeJson(storage, bucket, runObjectName(version, 'trained'), best);
      log.info(
        { k, inertia: best.inertia, restarts: best.restarts, restartsOnHelperThread: fit.restartsOnHelper, converged: best.converged },
        'model trained',
      );
      return { version, k, inertia: best.inertia, reused: false };
    },

    /** Labels the segments and carries ids and labels over from the current model (Hungarian matching). */
    async segmentationLabel(input: DagTaskInput) {
      const version = versionOf(input);
      const log = taskLog(input, version);
      const done = await readStep(version, 'model', z.unknown());
      if (done !== null) {
        const model = parseSegmentModel(done);
        return { version, k: model.centroids.length, labels: model.segments.map((s) => s.label), reused: true };
      }
      const extract = await requireStep(version, 'extract', ExtractSchema, 'extract');
      const kstep = await requireStep(version, 'k_selection', KStepSchema, 'choose_k');
      const trained = await requireStep(version, 'trained', TrainedSchema, 'train');
      const rows = extractRows(extract);
      const cohesion = cohesionFigures(
        prepareMatrix(kstep.preparation, rows),
        rows.length,
        kstep.preparation.features.length,
        trained.centroids,
        {
          seed: settings.seed,
          silhouetteSampleSize: settings.silhouetteSampleSize,
        },
      );
      const candidate = parseSegmentModel({
        version,
        created_at: new Date().toISOString(),
        features: segmentFeatures(config),
        preparation: kstep.preparation,
        centroids: trained.centroids,
        segments: describeSegments(kstep.preparation, trained.centroids, trained.sizes),
        k_selection: kstep.selection,
        metrics: {
          inertia: trained.inertia,
          silhouette: kstep.selection.candidates.find((c) => c.k === trained.k)?.silhouette ?? 0,
        },
        cohesion,
        training: {
          sample_size: extract.ids.length,
          seed: trained.seed,
          n_init: trained.restarts,
          iterations: trained.iterations,
          converged: trained.converged,
        },
      });
      const current = await loadCurrentModel(storage, bucket);
      let model = candidate;
      let label: z.infer<typeof LabelStepSchema> = { relabelledFrom: null, matches: [] };
      const sameFeatures =
        current !== null &&
        current.preparation.features.map((f) => f.name).join(',') === candidate.preparation.features.map((f) => f.name).join(',');
      if (current && current.version !== version && sameFeatures) {
        const relabelled = relabelFromCurrent(current, candidate);
        model = relabelled.model;
        label = { relabelledFrom: current.version, matches: relabelled.matches };
      } else if (current && !sameFeatures) {
        log.warn({ current: current.version }, 'the current model uses other features; segments start afresh (new ids)');
      }
      await writeJson(storage, bucket, runObjectName(version, 'labels'), label);
      await writeJson(storage, bucket, runObjectName(version, 'model'), model);
      log.info(
        { segments: model.segments.map((s) => ({ id: s.id, label: s.label, share: s.share })), relabelledFrom: label.relabelledFrom },
        'segments labelled',
      );
      return { version, k: model.centroids.length, labels: model.segments.map((s) => s.label), reused: false };
    },

    /** Writes the artifact to models/segmentation/<version>.json and registers it (not current yet). */
    async segmentationRegister(input: DagTaskInput) {
      const version = versionOf(input);
      const model = await candidateModel(version);
      const uri = `gs://${bucket}/${modelObjectName(version)}`;
      await writeJson(storage, bucket, modelObjectName(version), model);
      await ensureTable('segment_models', SEGMENT_MODELS_SCHEMA);
      const [row] = await query(`SELECT COUNT(*) AS n FROM ${table('segment_models')} WHERE version = @v`, { v: version });
      if (Number(row?.n ?? 0) === 0) {
        const metrics = JSON.stringify({
          ...model.metrics,
          chosen_k: model.k_selection.chosen_k,
          elbow_k: model.k_selection.elbow_k,
          chosen_by: model.k_selection.chosen_by,
          cohesion: model.cohesion
            ? { davies_bouldin: model.cohesion.davies_bouldin, calinski_harabasz: model.cohesion.calinski_harabasz }
            : null,
          training: model.training,
        });
        await query(
          `INSERT INTO ${table('segment_models')} (version, created_at, uri, k, is_current, metrics, promoted_at) VALUES (@v, @created, @uri, CAST(@k AS INT64), FALSE, @metrics, NULL)`,
          { v: version, created: new Date(model.created_at), uri, k: String(model.centroids.length), metrics },
        );
      }
      taskLog(input, version).info({ uri }, 'model registered');
      return { version, uri };
    },

    /** Assigns every customer in BigQuery (generated SQL), replacing this version's rows. */
    async segmentationAssignAll(input: DagTaskInput) {
      const version = versionOf(input);
      const log = taskLog(input, version);
      const model = await candidateModel(version);
      await ensureTable('customer_segments', CUSTOMER_SEGMENTS_SCHEMA);
      const gen = assignmentSql(model, { sourceTable: `${marts}.customer_features` });
      await query(`DELETE FROM ${table('customer_segments')} WHERE model_version = @model_version`, { model_version: version });
      const started = Date.now();
      await query(
        `INSERT INTO ${table('customer_segments')} (customer_id, model_version, segment_id, segment_label, distance, margin, assigned_at)\n` +
          `SELECT customer_id, model_version, segment_id, segment_label, distance, margin, @assigned_at AS assigned_at FROM (\n${gen.sql})`,
        { ...gen.params, segment_labels: gen.params.segment_labels ?? [], assigned_at: new Date(input.interval.end) },
      );
      const sizes = await segmentSizes(version);
      const customers = sizes.reduce((s, r) => s + r.customers, 0);
      log.info({ customers, ms: Date.now() - started, sizes }, 'every customer assigned in BigQuery');
      return { version, customers, sizes };
    },

    /** Compares the candidate with the current model, records the figures, alerts beyond thresholds. */
    async segmentationStability(input: DagTaskInput) {
      const version = versionOf(input);
      const log = taskLog(input, version);
      const done = await readStep(version, 'stability', StabilityStepSchema);
      if (done) return { ...(done as StabilityStep), reused: true };
      const candidate = await candidateModel(version);
      const current = await loadCurrentModel(storage, bucket);
      const cohesionBreaches = candidate.cohesion
        ? checkCohesion(
            candidate.cohesion,
            candidate.segments.map((s) => s.label),
            settings.cohesion,
          )
        : [];
      let step: StabilityStep;
      let summary: string | null;
      if (current === null || current.version === version) {
        const release = decideRelease(version, null, cohesionBreaches, [], settings.promotionPolicy);
        summary = release.summary;
        step = {
          version,
          previousVersion: null,
          figures: null,
          breaches: release.breaches,
          decision: release.decision,
          decisionName: release.decisionName,
          alerted: false,
        };
      } else {
        const sameFeatures =
          current.preparation.features.map((f) => f.name).join(',') === candidate.preparation.features.map((f) => f.name).join(',');
        let figures: StabilityFigures | null = null;
        let breaches: StabilityBreach[];
        if (sameFeatures) {
          // Customers in both assignments, by (current id, candidate id): one GROUP BY, nothing leaves BigQuery.
          const cells = await query(
            `SELECT o.segment_id AS current_id, n.segment_id AS candidate_id, COUNT(*) AS customers
             FROM ${table('customer_segments')} AS n
             JOIN ${table('customer_segments')} AS o ON o.customer_id = n.customer_id
             WHERE n.model_version = @candidate AND o.model_version = @current
             GROUP BY current_id, candidate_id`,
            { candidate: version, current: current.version },
          );
          const contingency: ContingencyCell[] = cells.map((c) => ({
            current_id: Number(c.current_id),
            candidate_id: Number(c.candidate_id),
            customers: Number(c.customers),
          }));
          figures = stabilityFigures(current, candidate, contingency);
          breaches = checkStability(figures, settings.thresholds);
        } else {
          breaches = [
            {
              metric: 'segments',
              value: 1,
              threshold: 0,
              message: `the feature set changed since ${current.version}; segments cannot be matched`,
            },
          ];
        }
        const release = decideRelease(version, current.version, cohesionBreaches, breaches, settings.promotionPolicy);
        summary = release.summary;
        step = {
          version,
          previousVersion: current.version,
          figures,
          breaches: release.breaches,
          decision: release.decision,
          decisionName: release.decisionName,
          alerted: false,
        };
      }

      await ensureTable('segment_stability', SEGMENT_STABILITY_SCHEMA);
      await query(`DELETE FROM ${table('segment_stability')} WHERE model_version = @v`, { v: version });
      const f = step.figures;
      await query(
        `INSERT INTO ${table('segment_stability')} (model_version, previous_version, changed_share, ari, max_centroid_drift, size_shifts, breaches, decision, computed_at)
         VALUES (@v, ${step.previousVersion === null ? 'NULL' : '@prev'}, ${f ? 'CAST(@changed AS FLOAT64)' : 'NULL'}, ${f ? 'CAST(@ari AS FLOAT64)' : 'NULL'},
                 ${f ? 'CAST(@drift AS FLOAT64)' : 'NULL'}, @shifts, @breaches, @decision, @at)`,
        {
          v: version,
          ...(step.previousVersion === null ? {} : { prev: step.previousVersion }),
          ...(f ? { changed: String(f.changed_share), ari: String(f.adjusted_rand_index), drift: String(f.max_centroid_drift) } : {}),
          shifts: JSON.stringify(f?.size_shifts ?? []),
          breaches: JSON.stringify(step.breaches),
          decision: step.decisionName,
          at: new Date(),
        },
      );

      if (step.decision.alert) {
        const alert: Alert = {
          kind: 'data_anomaly',
          severity: 'warning',
          summary: summary ?? `Segments of ${version}: ${step.decisionName}`,
          message: step.breaches.map((b) => `- ${b.message}`).join('\n'),
          dedupKey: alertDedupKey('data_anomaly', NIGHTLY_SEGMENTATION_DAG, 'stability', version),
          occurredAt: new Date().toISOString(),
          dagId: input.dagId,
          taskIds: [input.taskId],
          interval: input.interval,
          links: [],
        };
        await raiseAlert(alert);
        step = { ...step, alerted: true };
      }
      await writeJson(storage, bucket, runObjectName(version, 'stability'), step);
      log.info(
        { previous: step.previousVersion, decision: step.decisionName, breaches: step.breaches.length, figures: step.figures },
        'stability measured',
      );
      return { ...step, reused: false };
    },

    /** By the stability decision: switch current.json to this version in one write, then mark the registry. */
    async segmentationPromote(input: DagTaskInput) {
      const version = versionOf(input);
      const log = taskLog(input, version);
      const step = await requireStep(version, 'stability', StabilityStepSchema, 'stability');
      if (!step.decision.promote) {
        log.warn({ reason: step.decision.reason }, 'model held; the current model keeps serving');
        return { version, promoted: false, reason: step.decision.reason };
      }
      const uri = `gs://${bucket}/${modelObjectName(version)}`;
      await writeJson(storage, bucket, CURRENT_MODEL_OBJECT, { version, uri } satisfies CurrentModelPointer);
      await ensureTable('segment_models', SEGMENT_MODELS_SCHEMA);
      await query(
        `UPDATE ${table('segment_models')} SET is_current = (version = @v), promoted_at = IF(version = @v AND promoted_at IS NULL, @at, promoted_at) WHERE TRUE`,
        { v: version, at: new Date() },
      );
      log.info({ uri }, 'model promoted');
      return { version, promoted: true, reason: step.decision.reason };
    },
  };
}

export type SegmentationActivities = ReturnType<typeof createSegmentationActivities>;

export interface SegmentationRunSummary {
  version: string;
  model: SegmentModel | null;
  sizes: SegmentSize[];
  stability: StabilityStep | null;
  current: CurrentModelPointer | null;
}

/** What a run of one version produced, read back from GCS and BigQuery (for `npm run segment` and tests). */
export async function readSegmentationRun(
  deps: Pick<SegmentationDeps, 'bigquery' | 'storage' | 'config'>,
  version: string,
): Promise<SegmentationRunSummary> {
  const { bigquery, storage, config } = deps;
  const bucket = config.lake.bucket;
  const modelJson = await readJson(storage, bucket, modelObjectName(version));
  const stabilityJson = await readJson(storage, bucket, runObjectName(version, 'stability'));
  let sizes: SegmentSize[] = [];
  try {
    const [rows] = await bigquery.query({
      query: `SELECT segment_id, ANY_VALUE(segment_label) AS segment_label, COUNT(*) AS customers FROM ${qualifiedTable(config.gcp.projectId, config.warehouse.marts, 'customer_segments')} WHERE model_version = @v GROUP BY segment_id ORDER BY segment_id`,
      params: { v: version },
      types: { v: 'STRING' },
      location: config.gcp.location,
    });
    const total = (rows as { customers: number }[]).reduce((s, r) => s + Number(r.customers), 0);
    sizes = (rows as { segment_id: number; segment_label: string; customers: number }[]).map((r) => ({
      segment_id: Number(r.segment_id),
      segment_label: String(r.segment_label),
      customers: Number(r.customers),
      share: total > 0 ? Number(r.customers) / total : 0,
    }));
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  return {
    version,
    model: modelJson === null ? null : parseSegmentModel(modelJson),
    sizes,
    stability: stabilityJson === null ? null : (StabilityStepSchema.parse(stabilityJson) as StabilityStep),
    current: await loadCurrentPointer(storage, bucket),
  };
}
