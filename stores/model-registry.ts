/**
 * The segmentation model registry and its artifacts: what the nightly_segmentation tasks leave
 * for each other and for the real-time path, the profile sync and `npm run segment`.
 *
 * Storage layout (bucket = SEGFLOW_LAKE_BUCKET):
 *   models/segmentation/<version>.json              the model artifact (SegmentModelSchema)
 *   models/segmentation/current.json                {"version", "uri"}: the one-step promotion switch
 *   models/segmentation/runs/<version>/<step>.json  what each task leaves for the next
 * Warehouse (dataset = SEGFLOW_DATASET_MARTS): segment_models (registry), customer_segments
 * (one row per customer per version), segment_stability (one row per candidate version),
 * segment_promotions (one row per switch of current.json: who, when, why). Their
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
  SegmentAlgorithmSchema,
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
  { name: 'parent_segment', type: 'INT64', description: 'The parent segment id (nested segments); NULL for models without a hierarchy' },
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

export const SEGMENT_PROMOTIONS_SCHEMA: TableField[] = [
  { name: 'model_version', type: 'STRING', mode: 'REQUIRED', description: 'the version current.json was switched to' },
  { name: 'previous_version', type: 'STRING', description: 'the version it replaced; null for the first promotion' },
  { name: 'action', type: 'STRING', mode: 'REQUIRED', description: 'nightly (the promote task), promote or rollback (ops models)' },
  { name: 'promoted_by', type: 'STRING', mode: 'REQUIRED', description: 'who: an operator, or the DAG for nightly promotions' },
  { name: 'note', type: 'STRING', description: 'why' },
  { name: 'promoted_at', type: 'TIMESTAMP', mode: 'REQUIRED' },
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
  /** The algorithm choose_k ran (absent in steps written before the choice: k-means). */
  algorithm: SegmentAlgorithmSchema.optional(),
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

export type WarehouseDeps = { bigquery: BigQuery; config: Pick<Config, 'gcp' | 'warehouse'> };

/**
 * Rows of a query on the marts dataset, or null when its table does not exist yet. The dataset is
 * the query's default dataset, so no configured name enters the SQL text.
 */
/** A bare table name after FROM, JOIN, INTO or UPDATE in one of this module's own queries. */
const BARE_TABLE = /\b(FROM|JOIN|INTO|UPDATE)\s+([A-Za-z_][A-Za-z0-9_]*)\b(?![.(])/g;

/**
 * The marts tables a query names, qualified with project and dataset. defaultDataset alone is not
 * enough on the local stack: the BigQuery emulator resolves a bare name to the first dataset that
 * holds a table of that name, whatever defaultDataset says. For this module's queries only: a FROM inside
 * a function call (EXTRACT(DAY FROM ts)) would be taken for a table.
 */
export function qualifyMartsTables(query: string, projectId: string, dataset: string): string {
  return query.replace(BARE_TABLE, (_, keyword: string, table: string) => `${keyword} \`${projectId}.${dataset}.${table}\``);
}

export async function queryMarts<Row>(
  { bigquery, config }: WarehouseDeps,
  query: string,
  params: Record<string, string | number | Date>,
  types: Record<string, string>,
): Promise<Row[] | null> {
  try {
    const [rows] = await bigquery.query({
      query: qualifyMartsTables(query, config.gcp.projectId, config.warehouse.marts),
      defaultDataset: { projectId: config.gcp.projectId, datasetId: config.warehouse.marts },
      params,
      types,
      location: config.gcp.location,
    });
    return rows as Row[];
  } catch (err) {
    // The BigQuery emulator answers a query on a missing table with a 400 naming it, not a 404.
    if (isNotFound(err) || /\b(Table|Dataset) not found\b/i.test(err instanceof Error ? err.message : '')) return null;
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

/** One row of marts.segment_models, its metrics JSON parsed, with its latest promotion record. */
export interface RegisteredModel {
  version: string;
  created_at: string;
  uri: string;
  k: number;
  is_current: boolean;
  promoted_at: string | null;
  /** Who made it current the last time, and why (marts.segment_promotions); null when never recorded. */
  promoted_by: string | null;
  promotion_note: string | null;
  metrics: Record<string, unknown>;
}

export function isoOf(value: unknown): string | null {
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
  const latest = new Map<string, PromotionRecord>();
  for (const p of await readPromotions(deps)) if (!latest.has(p.model_version)) latest.set(p.model_version, p);
  return rows.map((r) => ({
    version: String(r.version),
    created_at: isoOf(r.created_at) ?? '',
    uri: String(r.uri),
    k: Number(r.k),
    is_current: r.is_current === true,
    promoted_at: isoOf(r.promoted_at),
    promoted_by: latest.get(String(r.version))?.promoted_by ?? null,
    promotion_note: latest.get(String(r.version))?.note ?? null,
    metrics: parseMetrics(r.metrics),
  }));
}

/** The artifact of `version`, or null when no such model was written. */
export async function loadModelVersion(storage: Storage, bucket: string, version: string): Promise<SegmentModel | null> {
  const json = await readJson(storage, bucket, modelObjectName(version));
  return json === null ? null : parseSegmentModel(json);
}

// ---------------------------------------------------------------- promotions (who switched current.json, when, why)

export type PromotionAction = 'nightly' | 'promote' | 'rollback';

export interface PromotionRecord {
  model_version: string;
  previous_version: string | null;
  action: PromotionAction;
  promoted_by: string;
  note: string | null;
  promoted_at: string;
}

/** Creates a marts table (and the dataset) when missing; a concurrent creator is not an error. */
export async function ensureMartsTable({ bigquery, config }: WarehouseDeps, name: string, schema: TableField[]): Promise<void> {
  const dataset = bigquery.dataset(config.warehouse.marts, { location: config.gcp.location });
  const created = (err: unknown) => {
    if ((err as { code?: number }).code !== 409) throw err;
  };
  if (!(await dataset.exists())[0]) await dataset.create().catch(created);
  const table = dataset.table(name);
  if (!(await table.exists())[0]) await table.create({ schema: { fields: schema } }).catch(created);
}

/**
 * Records a switch of current.json: one row in segment_promotions, and is_current (and the first
 * promoted_at) in segment_models. Runs after the pointer write, which is the switch itself.
 */
export async function recordPromotion(deps: WarehouseDeps, record: PromotionRecord): Promise<void> {
  await ensureMartsTable(deps, 'segment_promotions', SEGMENT_PROMOTIONS_SCHEMA);
  await ensureMartsTable(deps, 'segment_models', SEGMENT_MODELS_SCHEMA);
  // A Date, not a string: the emulator stores NULL for a TIMESTAMP parameter given as text.
  const at = new Date(record.promoted_at);
  await queryMarts(
    deps,
    `INSERT INTO segment_promotions (model_version, previous_version, action, promoted_by, note, promoted_at)
     VALUES (@v, ${record.previous_version === null ? 'NULL' : '@prev'}, @action, @by, ${record.note === null ? 'NULL' : '@note'}, @at)`,
    {
      v: record.model_version,
      ...(record.previous_version === null ? {} : { prev: record.previous_version }),
      action: record.action,
      by: record.promoted_by,
      ...(record.note === null ? {} : { note: record.note }),
      at,
    },
    {
      v: 'STRING',
      ...(record.previous_version === null ? {} : { prev: 'STRING' }),
      action: 'STRING',
      by: 'STRING',
      ...(record.note === null ? {} : { note: 'STRING' }),
      at: 'TIMESTAMP',
    },
  );
  await queryMarts(
    deps,
    'UPDATE segment_models SET is_current = (version = @v), promoted_at = IF(version = @v AND promoted_at IS NULL, @at, promoted_at) WHERE TRUE',
    { v: record.model_version, at },
    { v: 'STRING', at: 'TIMESTAMP' },
  );
}

/** Promotion records, newest first (of one version when given); [] before the first one was recorded. */
export async function readPromotions(deps: WarehouseDeps, opts: { version?: string; limit?: number } = {}): Promise<PromotionRecord[]> {
  const where = opts.version === undefined ? '' : 'WHERE model_version = @v';
  const rows =
    (await queryMarts<Record<string, unknown>>(
      deps,
      `SELECT model_version, previous_version, action, promoted_by, note, promoted_at FROM segment_promotions ${where}
       ORDER BY promoted_at DESC LIMIT @n`,
      { n: String(opts.limit ?? 1000), ...(opts.version === undefined ? {} : { v: opts.version }) },
      { n: 'INT64', ...(opts.version === undefined ? {} : { v: 'STRING' }) },
    )) ?? [];
  return rows.map((r) => ({
    model_version: String(r.model_version),
    previous_version: r.previous_version === null || r.previous_version === undefined ? null : String(r.previous_version),
    action: String(r.action) as PromotionAction,
    promoted_by: String(r.promoted_by),
    note: r.note === null || r.note === undefined ? null : String(r.note),
    promoted_at: isoOf(r.promoted_at) ?? '',
  }));
}

// ---------------------------------------------------------------- stability rows

export interface StabilityRow {
  model_version: string;
  previous_version: string | null;
  changed_share: number | null;
  ari: number | null;
  max_centroid_drift: number | null;
  /** The thresholds this version broke, as the nightly stability task recorded them. */
  breaches: Record<string, unknown>[];
  decision: 'promote' | 'promote_with_alert' | 'hold';
  computed_at: string;
}

/** Rows of marts.segment_stability, newest first (of one version when given); [] when the table does not exist. */
export async function readStabilityRows(deps: WarehouseDeps, opts: { version?: string; limit?: number } = {}): Promise<StabilityRow[]> {
  const where = opts.version === undefined ? '' : 'WHERE model_version = @v';
  const rows =
    (await queryMarts<Record<string, unknown>>(
      deps,
      `SELECT model_version, previous_version, changed_share, ari, max_centroid_drift, breaches, decision, computed_at
       FROM segment_stability ${where}
       ORDER BY computed_at DESC, model_version DESC LIMIT @n`,
      { n: String(opts.limit ?? 100), ...(opts.version === undefined ? {} : { v: opts.version }) },
      { n: 'INT64', ...(opts.version === undefined ? {} : { v: 'STRING' }) },
    )) ?? [];
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return rows.map((r) => ({
    model_version: String(r.model_version),
    previous_version: r.previous_version === null || r.previous_version === undefined ? null : String(r.previous_version),
    changed_share: num(r.changed_share),
    ari: num(r.ari),
    max_centroid_drift: num(r.max_centroid_drift),
    breaches: jsonObjects(r.breaches),
    decision: String(r.decision) as StabilityRow['decision'],
    computed_at: isoOf(r.computed_at) ?? '',
  }));
}

/** The objects of a JSON array column; [] when it is empty, not an array or not JSON. */
function jsonObjects(raw: unknown): Record<string, unknown>[] {
  if (typeof raw !== 'string' || raw === '') return [];
  try {
    const parsed: unknown = JSON.parse(raw);
    return Array.isArray(parsed) ? parsed.filter((x): x is Record<string, unknown> => x !== null && typeof x === 'object') : [];
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------- transitions between two versions

export interface TransitionCell {
  from_id: number;
  to_id: number;
  customers: number;
}

/**
 * Customers assigned in both versions, by (segment in `from`, segment in `to`), and those assigned
 * in only one of them: one GROUP BY in BigQuery, nothing per customer leaves it.
 */
export async function readTransitions(
  deps: WarehouseDeps,
  from: string,
  to: string,
): Promise<{ cells: TransitionCell[]; onlyFrom: number; onlyTo: number }> {
  const rows =
    (await queryMarts<{ from_id: number | null; to_id: number | null; customers: number }>(
      deps,
      `SELECT a.segment_id AS from_id, b.segment_id AS to_id, COUNT(*) AS customers
       FROM (SELECT customer_id, segment_id FROM customer_segments WHERE model_version = @from) AS a
       FULL OUTER JOIN (SELECT customer_id, segment_id FROM customer_segments WHERE model_version = @to) AS b
       ON a.customer_id = b.customer_id
       GROUP BY from_id, to_id`,
      { from, to },
      { from: 'STRING', to: 'STRING' },
    )) ?? [];
  let onlyFrom = 0;
  let onlyTo = 0;
  const cells: TransitionCell[] = [];
  for (const r of rows) {
    const n = Number(r.customers);
    if (r.to_id === null) onlyFrom += n;
    else if (r.from_id === null) onlyTo += n;
    else cells.push({ from_id: Number(r.from_id), to_id: Number(r.to_id), customers: n });
  }
  cells.sort((a, b) => a.from_id - b.from_id || a.to_id - b.to_id);
  return { cells, onlyFrom, onlyTo };
}

// ---------------------------------------------------------------- segment health (for metrics)

export interface SegmentHealth {
  version: string;
  k: number;
  silhouette: number;
  /** When the current model became current (its latest promotion), else when it was created. */
  current_since: string;
  segments: Array<{ id: number; label: string; customers: number; share: number; silhouette: number | null }>;
  /** The newest stability measurement (of any candidate, held ones included); null before the second night. */
  stability: StabilityRow | null;
}

/** The current model's health figures, or null before the first promotion. */
export async function readSegmentHealth(deps: {
  bigquery: BigQuery;
  storage: Storage;
  config: Pick<Config, 'gcp' | 'warehouse' | 'lake'>;
}): Promise<SegmentHealth | null> {
  const model = await loadCurrentModel(deps.storage, deps.config.lake.bucket);
  if (model === null) return null;
  const [sizes, stability, promotions] = await Promise.all([
    readSegmentSizes(deps, model.version),
    readStabilityRows(deps, { limit: 1 }),
    readPromotions(deps, { version: model.version, limit: 1 }),
  ]);
  const counted = new Map(sizes.map((s) => [s.segment_id, s]));
  const total = model.segments.reduce((s, seg) => s + seg.size, 0);
  return {
    version: model.version,
    k: model.centroids.length,
    silhouette: model.metrics.silhouette,
    current_since: promotions[0]?.promoted_at ?? model.created_at,
    segments: model.segments.map((s, i) => ({
      id: s.id,
      label: s.label,
      // Counted over every customer when the warehouse holds the assignment, else the training sample.
      customers: sizes.length > 0 ? (counted.get(s.id)?.customers ?? 0) : s.size,
      share: sizes.length > 0 ? (counted.get(s.id)?.share ?? 0) : total > 0 ? s.size / total : 0,
      silhouette: model.cohesion?.segments.find((c) => c.index === i)?.silhouette ?? null,
    })),
    stability: stability[0] ?? null,
  };
}
