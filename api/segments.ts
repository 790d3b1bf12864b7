/**
 * The segments API: `GET /v1/models`, `GET /v1/models/:version`, `GET /v1/segments`,
 * `GET /v1/segments/:id/customers`, `GET /v1/models/:version/transitions/:to`, `GET /v1/stability`
 * and `GET /v1/runs`, read from the model registry (artifacts in GCS, marts.segment_models),
 * marts.customer_segments, marts.segment_stability and Temporal's visibility.
 * Every route has a JSON schema for its params and responses; the OpenAPI document is built from them.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Config } from '../core/config.js';
import { toOriginalUnits, type SegmentModel } from '../core/segmentation/index.js';
import type { RegisteredModel, SegmentSize, StabilityRow, TransitionCell } from '../stores/model-registry.js';
import { problem } from './problem.js';
import { VERSION_SCHEMA, errors, nullableNumber, nullableString, security, type Authenticate } from './schema-parts.js';
import { registerSegmentViews } from './segment-views.js';

/** Where the segments API reads models; stores/ in production (api/segments-store.ts). */
export interface SegmentsSource {
  /** Registered versions, newest first. */
  listModels(): Promise<RegisteredModel[]>;
  /** The version current.json points at, or null before the first promotion. */
  currentVersion(): Promise<string | null>;
  model(version: string): Promise<SegmentModel | null>;
  /** Customers per segment in marts.customer_segments; [] when the version was never assigned there. */
  sizes(version: string): Promise<SegmentSize[]>;
  /** Members of one segment of `version`, by customer id, those after `after` (keyset paging). */
  members(version: string, segmentId: number, after: string, limit: number): Promise<MemberRow[]>;
  /** The newest rows of marts.segment_stability, newest first. */
  stability(limit: number): Promise<StabilityRow[]>;
  /** Customers per (version, segment) in marts.customer_segments. */
  versionSizes(): Promise<VersionSize[]>;
  /** Customers in both assignments, by (segment in `from`, segment in `to`). */
  transitions(from: string, to: string): Promise<TransitionCell[]>;
  /** The stability alert thresholds the nightly job applies; null when not configured here. */
  thresholds(): StabilityThresholds | null;
  /** The last runs of a DAG in Temporal, newest first; absent when the API has no Temporal client. */
  recentRuns?(dagId: string, limit: number): Promise<DagRun[]>;
}

export interface MemberRow {
  customer_id: string;
  distance: number | null;
  margin: number | null;
  assigned_at: string | null;
}
export interface VersionSize {
  model_version: string;
  segment_id: number;
  segment_label: string;
  customers: number;
}
export interface DagRun {
  workflow_id: string;
  run_id: string;
  status: string;
  start_time: string;
  close_time: string | null;
  url: string;
}
export type StabilityThresholds = Config['segmentation']['thresholds'];

const numberMap = { type: 'object', additionalProperties: { type: 'number' } } as const;

const METRICS_SCHEMA = {
  type: 'object',
  required: ['inertia', 'silhouette', 'chosen_k', 'elbow_k', 'chosen_by'],
  properties: {
    inertia: { ...nullableNumber, description: 'sum of squared distances over the training rows' },
    silhouette: { ...nullableNumber, description: 'mean silhouette on the silhouette sample' },
    chosen_k: { type: ['integer', 'null'] },
    elbow_k: { type: ['integer', 'null'] },
    chosen_by: nullableString,
  },
} as const;

const MODEL_SUMMARY_PROPERTIES = {
  version: { type: 'string' },
  created_at: { type: 'string', format: 'date-time' },
  k: { type: 'integer' },
  is_current: { type: 'boolean', description: 'current.json points at this version' },
  promoted_at: { ...nullableString, description: 'when it first became current; null if never' },
  promoted_by: {
    ...nullableString,
    description: 'who made it current the last time (an operator, or the nightly DAG); null if never recorded',
  },
  promotion_note: { ...nullableString, description: 'why, as recorded with that promotion' },
  metrics: METRICS_SCHEMA,
} as const;
const MODEL_SUMMARY_REQUIRED = [
  'version',
  'created_at',
  'k',
  'is_current',
  'promoted_at',
  'promoted_by',
  'promotion_note',
  'metrics',
] as const;

const MODEL_LIST_SCHEMA = {
  type: 'object',
  required: ['current', 'models'],
  properties: {
    current: { ...nullableString, description: 'the current version; null before the first promotion' },
    models: { type: 'array', items: { type: 'object', required: MODEL_SUMMARY_REQUIRED, properties: MODEL_SUMMARY_PROPERTIES } },
  },
} as const;

const SEGMENT_SCHEMA = {
  type: 'object',
  required: ['id', 'label', 'size', 'share', 'centroid', 'traits'],
  properties: {
    id: { type: 'integer', description: 'stable across model versions for the same group' },
    label: { type: 'string' },
    size: { type: 'integer', description: 'customers in the segment' },
    share: { type: 'number', minimum: 0, maximum: 1 },
    centroid: { ...numberMap, description: 'the centroid in original feature units, by feature name' },
    traits: { type: 'array', items: { type: 'string' } },
  },
} as const;

const FEATURE_SCHEMA = {
  type: 'object',
  required: ['name', 'population', 'weight', 'log', 'fill', 'missing_share'],
  properties: {
    name: { type: 'string' },
    population: { type: 'number', description: "the training population's centroid, in original units" },
    weight: { type: 'number' },
    log: { type: 'boolean' },
    role: { type: 'string' },
    fill: { type: 'number', description: 'value used for a missing one (training median)' },
    missing_share: { type: 'number' },
  },
} as const;

const K_SELECTION_SCHEMA = {
  type: 'object',
  required: ['chosen_k', 'elbow_k', 'chosen_by', 'candidates'],
  properties: {
    chosen_k: { type: 'integer' },
    elbow_k: { type: ['integer', 'null'] },
    chosen_by: { type: 'string' },
    candidates: {
      type: 'array',
      items: {
        type: 'object',
        required: ['k', 'inertia', 'silhouette', 'stability', 'min_share', 'rejected_reason'],
        properties: {
          k: { type: 'integer' },
          inertia: { type: 'number' },
          silhouette: { type: 'number' },
          stability: {
            type: ['number', 'null'],
            description: 'mean adjusted Rand index between fits on bootstrap resamples (null in models trained before it was recorded)',
          },
          min_share: { type: 'number', description: "the smallest segment's share of the training rows" },
          rejected_reason: { ...nullableString, description: 'why this k could not be chosen (e.g. a segment below the minimum share)' },
        },
      },
    },
  },
} as const;

const COHESION_SCHEMA = {
  type: ['object', 'null'],
  description: 'cohesion and separation as trained, in prepared space (null for models trained before it was recorded)',
  required: ['silhouette', 'davies_bouldin', 'calinski_harabasz', 'silhouette_rows', 'rows', 'segments'],
  properties: {
    silhouette: { type: 'number' },
    davies_bouldin: { ...nullableNumber, description: 'lower is better' },
    calinski_harabasz: { ...nullableNumber, description: 'higher is better' },
    silhouette_rows: { type: 'integer' },
    rows: { type: 'integer' },
    segments: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'label', 'silhouette', 'mean_distance', 'nearest_centroid_distance', 'nearest_segment_id'],
        properties: {
          id: { type: 'integer' },
          label: { type: 'string' },
          silhouette: { ...nullableNumber, description: "mean silhouette of the segment's rows in the silhouette sample" },
          mean_distance: { type: 'number', description: 'mean distance of its rows to its centroid (cohesion)' },
          nearest_centroid_distance: { ...nullableNumber, description: 'distance to the nearest other centroid (separation)' },
          nearest_segment_id: { type: ['integer', 'null'] },
        },
      },
    },
  },
} as const;

/** The artifact's cohesion figures by segment id (the artifact keys them by centroid index). */
function cohesionOf(model: SegmentModel) {
  const c = model.cohesion;
  if (c === undefined) return null;
  return {
    silhouette: c.silhouette,
    davies_bouldin: c.davies_bouldin,
    calinski_harabasz: c.calinski_harabasz,
    silhouette_rows: c.silhouette_rows,
    rows: c.rows,
    segments: c.segments.map((s) => ({
      id: model.segments[s.index]!.id,
      label: model.segments[s.index]!.label,
      silhouette: s.silhouette,
      mean_distance: s.mean_distance,
      nearest_centroid_distance: s.nearest_centroid_distance,
      nearest_segment_id: s.nearest_index === null ? null : model.segments[s.nearest_index]!.id,
    })),
  };
}

const MODEL_DETAIL_SCHEMA = {
  type: 'object',
  required: [...MODEL_SUMMARY_REQUIRED, 'features', 'k_selection', 'training', 'segments', 'cohesion'],
  properties: {
    ...MODEL_SUMMARY_PROPERTIES,
    cohesion: COHESION_SCHEMA,
    features: { type: 'array', items: FEATURE_SCHEMA },
    k_selection: K_SELECTION_SCHEMA,
    training: {
      type: 'object',
      required: ['sample_size', 'seed', 'n_init', 'iterations', 'converged'],
      properties: {
        sample_size: { type: 'integer' },
        seed: { type: 'integer' },
        n_init: { type: 'integer' },
        iterations: { type: 'integer' },
        converged: { type: 'boolean' },
      },
    },
    segments: { type: 'array', items: SEGMENT_SCHEMA, description: 'segments with their training-sample sizes' },
  },
} as const;

const SEGMENTS_SCHEMA = {
  type: 'object',
  required: ['model_version', 'is_current', 'size_source', 'customers', 'features', 'segments'],
  properties: {
    model_version: { type: 'string' },
    is_current: { type: 'boolean' },
    size_source: {
      type: 'string',
      enum: ['customer_segments', 'training_sample'],
      description:
        'customer_segments: counted in marts.customer_segments; training_sample: the model artifact, when the warehouse has no assignment of this version',
    },
    customers: { type: 'integer', description: 'sum of the sizes' },
    features: {
      type: 'array',
      items: { type: 'object', required: ['name', 'population'], properties: { name: { type: 'string' }, population: { type: 'number' } } },
    },
    segments: { type: 'array', items: SEGMENT_SCHEMA },
  },
} as const;

/** The training population's centroid in original units: the size-weighted mean of the centroids in prepared space. */
export function populationCentroid(model: SegmentModel): number[] {
  const dim = model.preparation.features.length;
  const mean = new Array<number>(dim).fill(0);
  const total = model.segments.reduce((s, seg) => s + seg.size, 0);
  model.centroids.forEach((c, i) => {
    const w = total > 0 ? model.segments[i]!.size / total : 1 / model.centroids.length;
    for (let j = 0; j < dim; j++) mean[j]! += w * c[j]!;
  });
  return toOriginalUnits(model.preparation, mean);
}

type Metrics = Record<keyof typeof METRICS_SCHEMA.properties, number | string | null>;

function metricsOf(model: SegmentModel | null, registered: RegisteredModel | undefined): Metrics {
  const m = registered?.metrics ?? {};
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  return {
    inertia: model?.metrics.inertia ?? num(m.inertia),
    silhouette: model?.metrics.silhouette ?? num(m.silhouette),
    chosen_k: model?.k_selection.chosen_k ?? num(m.chosen_k),
    elbow_k: model ? model.k_selection.elbow_k : num(m.elbow_k),
    chosen_by: model?.k_selection.chosen_by ?? (typeof m.chosen_by === 'string' ? m.chosen_by : null),
  };
}

export function registerSegmentRoutes(api: FastifyInstance, deps: { source: SegmentsSource; authenticate: Authenticate }) {
  const { source, authenticate } = deps;

  registerSegmentViews(api, deps);

  async function modelOr404(reply: FastifyReply, version: string): Promise<SegmentModel | null> {
    const model = await source.model(version);
    if (model === null) problem(reply, 404, 'Not Found', `no model version ${version} (GET /v1/models lists them)`);
    return model;
  }

  api.get(
    '/v1/models',
    {
      preValidation: authenticate,
      schema: {
        summary: 'Registered model versions, newest first',
        tags: ['segments'],
        security,
        response: { 200: MODEL_LIST_SCHEMA, ...errors },
      },
    },
    async (_request, reply) => {
      const [models, current] = await Promise.all([source.listModels(), source.currentVersion()]);
      reply.header('cache-control', 'no-store');
      return {
        current,
        models: models.map((r) => ({
          version: r.version,
          created_at: r.created_at,
          k: r.k,
          is_current: r.version === current,
          promoted_at: r.promoted_at,
          promoted_by: r.promoted_by,
          promotion_note: r.promotion_note,
          metrics: metricsOf(null, r),
        })),
      };
    },
  );

  api.get<{ Params: { version: string } }>(
    '/v1/models/:version',
    {
      preValidation: authenticate,
      schema: {
        summary: 'One model version: features, how k was chosen, segments',
        tags: ['segments'],
        security,
        params: { type: 'object', required: ['version'], properties: { version: VERSION_SCHEMA } },
        response: { 200: MODEL_DETAIL_SCHEMA, ...errors },
      },
    },
    async (request, reply) => {
      const { version } = request.params;
      const model = await modelOr404(reply, version);
      if (model === null) return reply;
      const [models, current] = await Promise.all([source.listModels(), source.currentVersion()]);
      const registered = models.find((r) => r.version === version);
      const population = populationCentroid(model);
      reply.header('cache-control', 'no-store');
      return {
        version: model.version,
        created_at: model.created_at,
        k: model.centroids.length,
        is_current: version === current,
        promoted_at: registered?.promoted_at ?? null,
        promoted_by: registered?.promoted_by ?? null,
        promotion_note: registered?.promotion_note ?? null,
        metrics: metricsOf(model, registered),
        features: model.preparation.features.map((f, j) => ({
          name: f.name,
          population: population[j]!,
          weight: f.weight,
          log: f.log,
          ...(f.role ? { role: f.role } : {}),
          fill: f.fill,
          missing_share: f.missing_share,
        })),
        k_selection: {
          ...model.k_selection,
          candidates: model.k_selection.candidates.map((c) => ({
            ...c,
            stability: c.stability ?? null,
            rejected_reason: c.rejected_reason ?? null,
          })),
        },
        training: model.training,
        segments: model.segments,
        cohesion: cohesionOf(model),
      };
    },
  );

  api.get<{ Querystring: { version?: string } }>(
    '/v1/segments',
    {
      preValidation: authenticate,
      schema: {
        summary: "The current model's segments (or one version's), with customer counts",
        tags: ['segments'],
        security,
        querystring: { type: 'object', properties: { version: VERSION_SCHEMA }, additionalProperties: false },
        response: { 200: SEGMENTS_SCHEMA, ...errors },
      },
    },
    async (request, reply) => {
      const current = await source.currentVersion();
      const version = request.query.version ?? current;
      if (version === null)
        return problem(reply, 404, 'Not Found', 'no model has been promoted yet; the nightly segmentation promotes the first one');
      const model = await modelOr404(reply, version);
      if (model === null) return reply;
      const counted = await source.sizes(version);
      const fromWarehouse = counted.length > 0;
      const sizeOf = new Map(counted.map((s) => [s.segment_id, s.customers]));
      const sizes = model.segments.map((s) => (fromWarehouse ? (sizeOf.get(s.id) ?? 0) : s.size));
      const customers = sizes.reduce((a, b) => a + b, 0);
      const population = populationCentroid(model);
      reply.header('cache-control', 'no-store');
      return {
        model_version: version,
        is_current: version === current,
        size_source: fromWarehouse ? 'customer_segments' : 'training_sample',
        customers,
        features: model.preparation.features.map((f, j) => ({ name: f.name, population: population[j]! })),
        segments: model.segments.map((s, i) => ({
          id: s.id,
          label: s.label,
          size: sizes[i]!,
          share: customers > 0 ? sizes[i]! / customers : 0,
          centroid: s.centroid,
          traits: s.traits,
        })),
      };
    },
  );
}
