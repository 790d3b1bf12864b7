/**
 * The segmentation model registry and its artifacts: what the nightly_segmentation tasks leave
 * for each other and for the real-time path, the profile sync and `npm run segment`.
 *
 * Storage layout (bucket = SEGFLOW_LAKE_BUCKET):
 *   models/segmentation/<version>.json              the model artifact (SegmentModelSchema)
 *   models/segmentation/current.json                {"version", "uri"}: the one-step promotion switch
 *   models/segmentation/runs/<version>/<step>.json  what each task leaves for the next
 * Warehouse (dataset = SEGFLOW_DATASET_MARTS): segment_models (registry), customer_segments
 * (one row per customer per version), segment_stability (one row per candidate version). Their
 * schemas live here, with the objects, because readers other than the tasks that write them
 * (scripts, the segments API, tests) must agree on them.
 */
import type { BigQuery, TableField } from '@google-cloud/bigquery';
import type { Storage } from '@google-cloud/storage';
import { z } from 'zod';
import type { Config } from '../core/config.js';
import {
  KSelectionSchema,
  PreparationSchema,
  parseSegmentModel,
  type SegmentModel,
  type StabilityFigures,
} from '../core/segmentation/index.js';

export const MODELS_PREFIX = 'models/segmentation';
export const CURRENT_MODEL_OBJECT = `${MODELS_PREFIX}/current.json`;

export function modelObjectName(version: string): string {
  return `${MODELS_PREFIX}/${version}.json`;
}

export function modelUri(bucket: string, version: string): string {
  return `gs://${bucket}/${modelObjectName(version)}`;
}

export function runObjectName(version: string, step: string): string {
  return `${MODELS_PREFIX}/runs/${version}/${step}.json`;
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

// ---------------------------------------------------------------- GCS objects

export function isNotFound(err: unknown): boolean {
  return (err as { code?: number }).code === 404;
}

export async function readJson(storage: Storage, bucket: string, name: string): Promise<unknown | null> {
  try {
    const [buf] = await storage.bucket(bucket).file(name).download();
    return JSON.parse(buf.toString('utf8'));
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

export async function writeJson(storage: Storage, bucket: string, name: string, value: unknown): Promise<void> {
  // One simple upload: the object appears whole or not at all, which is what makes current.json a one-step switch.
  await storage.bucket(bucket).file(name).save(JSON.stringify(value), { resumable: false, contentType: 'application/json' });
}

// ---------------------------------------------------------------- models

export const CurrentModelPointerSchema = z.object({
  version: z.string().min(1),
  uri: z.string().regex(/^gs:\/\/[^/]+\/.+$/, 'expected gs://<bucket>/<object>'),
});
export type CurrentModelPointer = z.infer<typeof CurrentModelPointerSchema>;

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

/** Writes the artifact to models/segmentation/<version>.json; returns its gs:// URI. */
export async function writeModel(storage: Storage, bucket: string, version: string, model: SegmentModel): Promise<string> {
  await writeJson(storage, bucket, modelObjectName(version), model);
  return modelUri(bucket, version);
}

/** Makes `version` the current model in one write; returns the pointer written. */
export async function writeCurrentPointer(storage: Storage, bucket: string, version: string): Promise<CurrentModelPointer> {
  const pointer: CurrentModelPointer = { version, uri: modelUri(bucket, version) };
  await writeJson(storage, bucket, CURRENT_MODEL_OBJECT, pointer);
  return pointer;
}

// ---------------------------------------------------------------- run state (runs/<version>/<step>.json)

export const ExtractSchema = z.object({
  version: z.string(),
  population: z.number().int().nonnegative(),
  sampled: z.boolean(),
  /** Rows kept per million (FARM_FINGERPRINT bucket < threshold). */
  threshold: z.number().int(),
  features: z.array(z.string()),
  ids: z.array(z.string()),
  /** One array per feature, aligned with ids: numbers, strings for categorical and ordinal features. */
  columns: z.array(z.array(z.union([z.number(), z.string()]).nullable())),
});
export type Extract = z.infer<typeof ExtractSchema>;

export const TrainedSchema = z.object({
  k: z.number().int().positive(),
  centroids: z.array(z.array(z.number())),
  sizes: z.array(z.number().int()),
  inertia: z.number(),
  iterations: z.number().int(),
  converged: z.boolean(),
  seed: z.number().int(),
  restarts: z.number().int(),
});
export type Trained = z.infer<typeof TrainedSchema>;

export const KStepSchema = z.object({
  preparation: PreparationSchema,
  selection: KSelectionSchema,
  fit: TrainedSchema,
});
export type KStep = z.infer<typeof KStepSchema>;

export const LabelStepSchema = z.object({
  /** Carried ids and labels from this version, when there was a comparable current model. */
  relabelledFrom: z.string().nullable(),
  matches: z.array(z.object({ candidateIndex: z.number(), currentIndex: z.number().nullable(), distance: z.number().nullable() })),
});
export type LabelStep = z.infer<typeof LabelStepSchema>;

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

/** What task `step` of run `version` left, or null when it has not run yet. */
export async function readStep<T>(
  storage: Storage,
  bucket: string,
  version: string,
  step: string,
  schema: z.ZodType<T>,
): Promise<T | null> {
  const json = await readJson(storage, bucket, runObjectName(version, step));
  return json === null ? null : schema.parse(json);
}

export async function writeStep(storage: Storage, bucket: string, version: string, step: string, value: unknown): Promise<void> {
  await writeJson(storage, bucket, runObjectName(version, step), value);
}

// ---------------------------------------------------------------- assignments

export interface SegmentSize {
  segment_id: number;
  segment_label: string;
  customers: number;
  share: number;
}

type WarehouseDeps = { bigquery: BigQuery; config: Pick<Config, 'gcp' | 'warehouse'> };

/**
 * Rows of a query on the marts dataset, or null when its table does not exist yet. The dataset is
 * the query's default dataset, so no configured name enters the SQL text.
 */
async function queryMarts<Row>(
  { bigquery, config }: WarehouseDeps,
  query: string,
  params: Record<string, string | number>,
  types: Record<string, string>,
): Promise<Row[] | null> {
  try {
    const [rows] = await bigquery.query({
      query,
      defaultDataset: { projectId: config.gcp.projectId, datasetId: config.warehouse.marts },
      params,
      types,
      location: config.gcp.location,
    });
    return rows as Row[];
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

/** Customers per segment of `version` in marts.customer_segments; [] when the table does not exist. */
export async function readSegmentSizes(deps: WarehouseDeps, version: string): Promise<SegmentSize[]> {
  const rows =
    (await queryMarts<{ segment_id: number; segment_label: string; customers: number }>(
      deps,
      'SELECT segment_id, ANY_VALUE(segment_label) AS segment_label, COUNT(*) AS customers FROM customer_segments WHERE model_version = @v GROUP BY segment_id ORDER BY segment_id',
      { v: version },
      { v: 'STRING' },
    )) ?? [];
  const total = rows.reduce((s, r) => s + Number(r.customers), 0);
  return rows.map((r) => ({
    segment_id: Number(r.segment_id),
    segment_label: String(r.segment_label),
    customers: Number(r.customers),
    share: total > 0 ? Number(r.customers) / total : 0,
  }));
}

// ---------------------------------------------------------------- a run, read back

export interface SegmentationRunSummary {
  version: string;
  model: SegmentModel | null;
  sizes: SegmentSize[];
  stability: StabilityStep | null;
  current: CurrentModelPointer | null;
}

/** What a run of one version produced, read back from GCS and BigQuery (for `npm run segment` and tests). */
export async function readSegmentationRun(
  deps: { bigquery: BigQuery; storage: Storage; config: Pick<Config, 'gcp' | 'warehouse' | 'lake'> },
  version: string,
): Promise<SegmentationRunSummary> {
  const { storage, config } = deps;
  const bucket = config.lake.bucket;
  const model = await loadModelVersion(storage, bucket, version);
  const stability = await readStep(storage, bucket, version, 'stability', StabilityStepSchema);
  return {
    version,
    model,
    sizes: await readSegmentSizes(deps, version),
    stability: stability as StabilityStep | null,
    current: await loadCurrentPointer(storage, bucket),
  };
}

// ---------------------------------------------------------------- the registry, read back

/** One row of marts.segment_models, its metrics JSON parsed. */
export interface RegisteredModel {
  version: string;
  created_at: string;
  uri: string;
  k: number;
  is_current: boolean;
  promoted_at: string | null;
  metrics: Record<string, unknown>;
}

function isoOf(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  // The BigQuery client returns TIMESTAMP columns as BigQueryTimestamp objects with a .value string.
  const raw = typeof value === 'object' && 'value' in value ? (value as { value: unknown }).value : value;
  const d = new Date(String(raw));
  return Number.isNaN(d.getTime()) ? String(raw) : d.toISOString();
}

function parseMetrics(raw: unknown): Record<string, unknown> {
  if (typeof raw !== 'string' || raw === '') return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Registered model versions, newest first (at most `limit`); [] when the registry table does not exist yet. */
export async function listRegisteredModels(deps: WarehouseDeps, limit = 100): Promise<RegisteredModel[]> {
  const rows =
    (await queryMarts<Record<string, unknown>>(
      deps,
      'SELECT version, created_at, uri, k, is_current, metrics, promoted_at FROM segment_models ORDER BY created_at DESC, version DESC LIMIT @n',
      // As a string: the BigQuery emulator refuses a JSON number as a query parameter value.
      { n: String(limit) },
      { n: 'INT64' },
    )) ?? [];
  return rows.map((r) => ({
    version: String(r.version),
    created_at: isoOf(r.created_at) ?? '',
    uri: String(r.uri),
    k: Number(r.k),
    is_current: r.is_current === true,
    promoted_at: isoOf(r.promoted_at),
    metrics: parseMetrics(r.metrics),
  }));
}

/** The artifact of `version`, or null when no such model was written. */
export async function loadModelVersion(storage: Storage, bucket: string, version: string): Promise<SegmentModel | null> {
  const json = await readJson(storage, bucket, modelObjectName(version));
  return json === null ? null : parseSegmentModel(json);
}
