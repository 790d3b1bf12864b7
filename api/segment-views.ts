/**
 * The segments API routes behind the explorer's history views: a segment's members
 * (`GET /v1/segments/:id/customers`, keyset-paged from marts.customer_segments), the nightly
 * stability figures (`GET /v1/stability`, marts.segment_stability with the alert thresholds and
 * segment sizes per version), the segment-to-segment transitions between two versions
 * (`GET /v1/models/:version/transitions/:to`) and the last DAG runs (`GET /v1/runs`, Temporal).
 */
import type { FastifyInstance } from 'fastify';
import { isCustomerId } from '../core/customer-id.js';
import { HOURLY_PIPELINE_DAG, NIGHTLY_SEGMENTATION_DAG } from '../core/dag-ids.js';
import { problem } from './problem.js';
import { VERSION_SCHEMA, errors, nullableNumber, nullableString, security, type Authenticate } from './schema-parts.js';
import type { DagRun, SegmentsSource } from './segments.js';

export const MEMBERS_PAGE = { default: 50, max: 500 } as const;
const STABILITY_NIGHTS = { default: 30, max: 365 } as const;
const RUNS_PER_DAG = 5;
/** The DAGs whose last runs the freshness view shows. */
export const FRESHNESS_DAGS = [HOURLY_PIPELINE_DAG, NIGHTLY_SEGMENTATION_DAG] as const;

const PAGE_TOKEN = /^[A-Za-z0-9_-]{1,200}$/;

/** An opaque page token: the last customer id of the page, base64url. */
function encodePageToken(customerId: string): string {
  return Buffer.from(customerId, 'utf8').toString('base64url');
}
function decodePageToken(token: string): string | null {
  const id = Buffer.from(token, 'base64url').toString('utf8');
  return isCustomerId(id) && encodePageToken(id) === token ? id : null;
}

const MEMBERS_SCHEMA = {
  type: 'object',
  required: ['model_version', 'segment_id', 'segment_label', 'customers', 'next_page_token'],
  properties: {
    model_version: { type: 'string' },
    segment_id: { type: 'integer' },
    segment_label: { type: 'string' },
    customers: {
      type: 'array',
      items: {
        type: 'object',
        required: ['customer_id', 'distance', 'margin', 'assigned_at'],
        properties: {
          customer_id: { type: 'string' },
          distance: { ...nullableNumber, description: 'squared distance to its centroid (prepared space)' },
          margin: { ...nullableNumber, description: 'squared distance to the next centroid minus to its own' },
          assigned_at: nullableString,
        },
      },
    },
    next_page_token: { ...nullableString, description: 'pass as page_token for the next page; null on the last page' },
  },
} as const;

const THRESHOLDS_SCHEMA = {
  type: ['object', 'null'],
  description: 'the alert thresholds the nightly job applies (null when this API process does not know them)',
  required: ['maxChangedShare', 'minAdjustedRandIndex', 'maxCentroidDrift', 'maxSizeShift', 'allowSegmentChanges'],
  properties: {
    maxChangedShare: { type: 'number' },
    minAdjustedRandIndex: { type: 'number' },
    maxCentroidDrift: { type: 'number' },
    maxSizeShift: { type: 'number' },
    allowSegmentChanges: { type: 'boolean' },
  },
} as const;

const STABILITY_SCHEMA = {
  type: 'object',
  required: ['thresholds', 'nights', 'sizes'],
  properties: {
    thresholds: THRESHOLDS_SCHEMA,
    nights: {
      type: 'array',
      description: 'one row of marts.segment_stability per candidate version, oldest first',
      items: {
        type: 'object',
        required: [
          'model_version',
          'previous_version',
          'changed_share',
          'ari',
          'max_centroid_drift',
          'breaches',
          'decision',
          'computed_at',
        ],
        properties: {
          model_version: { type: 'string' },
          previous_version: nullableString,
          changed_share: { ...nullableNumber, description: 'share of customers in both assignments that changed segment' },
          ari: { ...nullableNumber, description: 'adjusted Rand index between the two assignments' },
          max_centroid_drift: { ...nullableNumber, description: 'largest centroid move (prepared space)' },
          breaches: {
            type: 'array',
            items: {
              type: 'object',
              required: ['metric', 'message'],
              properties: {
                metric: { type: 'string' },
                value: { type: 'number' },
                threshold: { type: 'number' },
                message: { type: 'string' },
              },
            },
          },
          decision: { type: 'string', description: 'promote, promote_with_alert or hold' },
          computed_at: { type: 'string' },
        },
      },
    },
    sizes: {
      type: 'array',
      description: 'customers per segment of each of those versions in marts.customer_segments',
      items: {
        type: 'object',
        required: ['model_version', 'segment_id', 'segment_label', 'customers', 'share'],
        properties: {
          model_version: { type: 'string' },
          segment_id: { type: 'integer' },
          segment_label: { type: 'string' },
          customers: { type: 'integer' },
          share: { type: 'number' },
        },
      },
    },
  },
} as const;

const TRANSITIONS_SCHEMA = {
  type: 'object',
  required: ['from', 'to', 'customers', 'changed', 'changed_share', 'cells'],
  properties: {
    from: { type: 'string' },
    to: { type: 'string' },
    customers: { type: 'integer', description: 'customers assigned in both versions' },
    changed: { type: 'integer', description: 'of those, customers whose segment id differs' },
    changed_share: { type: 'number' },
    cells: {
      type: 'array',
      items: {
        type: 'object',
        required: ['from_id', 'from_label', 'to_id', 'to_label', 'customers'],
        properties: {
          from_id: { type: 'integer' },
          from_label: nullableString,
          to_id: { type: 'integer' },
          to_label: nullableString,
          customers: { type: 'integer' },
        },
      },
    },
  },
} as const;

const RUN_SCHEMA = {
  type: 'object',
  required: ['workflow_id', 'run_id', 'status', 'start_time', 'close_time', 'url'],
  properties: {
    workflow_id: { type: 'string' },
    run_id: { type: 'string' },
    status: { type: 'string', description: 'RUNNING, COMPLETED, FAILED, ...' },
    start_time: { type: 'string' },
    close_time: nullableString,
    url: { type: 'string', description: 'the run in the Temporal UI' },
  },
} as const;

const RUNS_SCHEMA = {
  type: 'object',
  required: ['available', 'message', 'dags'],
  properties: {
    available: { type: 'boolean', description: 'false when this API process cannot reach Temporal' },
    message: nullableString,
    dags: {
      type: 'array',
      items: {
        type: 'object',
        required: ['dag_id', 'runs'],
        properties: { dag_id: { type: 'string' }, runs: { type: 'array', items: RUN_SCHEMA } },
      },
    },
  },
} as const;

export function registerSegmentViews(api: FastifyInstance, deps: { source: SegmentsSource; authenticate: Authenticate }) {
  const { source, authenticate } = deps;

  api.get<{ Params: { id: string }; Querystring: { version?: string; limit?: number; page_token?: string } }>(
    '/v1/segments/:id/customers',
    {
      preValidation: authenticate,
      schema: {
        summary: "A segment's customers from marts.customer_segments, by customer id, one page at a time",
        tags: ['segments'],
        security,
        // A string with a pattern, not an integer: Ajv's coercion would read ' ' or '' as segment 0.
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', pattern: '^[0-9]{1,6}$', description: 'a segment id (GET /v1/segments lists them)' } },
        },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            version: { ...VERSION_SCHEMA, description: 'the model version (default: the current one)' },
            limit: { type: 'integer', minimum: 1, maximum: MEMBERS_PAGE.max, default: MEMBERS_PAGE.default },
            page_token: { type: 'string', maxLength: 200, description: 'next_page_token of the previous page' },
          },
        },
        response: { 200: MEMBERS_SCHEMA, ...errors },
      },
    },
    async (request, reply) => {
      const id = Number(request.params.id);
      const { limit = MEMBERS_PAGE.default, page_token: token } = request.query;
      let after = '';
      if (token !== undefined) {
        const decoded = PAGE_TOKEN.test(token) ? decodePageToken(token) : null;
        if (decoded === null) return problem(reply, 400, 'Bad Request', 'page_token: expected the next_page_token of a previous page');
        after = decoded;
      }
      const version = request.query.version ?? (await source.currentVersion());
      if (version === null) return problem(reply, 404, 'Not Found', 'no model has been promoted yet');
      const model = await source.model(version);
      if (model === null) return problem(reply, 404, 'Not Found', `no model version ${version} (GET /v1/models lists them)`);
      const segment = model.segments.find((s) => s.id === id);
      if (segment === undefined)
        return problem(reply, 404, 'Not Found', `model ${version} has no segment ${id} (GET /v1/segments lists them)`);
      // One row more than asked says whether another page follows.
      const rows = await source.members(version, id, after, limit + 1);
      const page = rows.slice(0, limit);
      reply.header('cache-control', 'no-store');
      return {
        model_version: version,
        segment_id: id,
        segment_label: segment.label,
        customers: page,
        next_page_token: rows.length > limit ? encodePageToken(page[page.length - 1]!.customer_id) : null,
      };
    },
  );

  api.get<{ Querystring: { limit?: number } }>(
    '/v1/stability',
    {
      preValidation: authenticate,
      schema: {
        summary: 'Stability over the last nights (marts.segment_stability), the alert thresholds, and segment sizes per version',
        tags: ['segments'],
        security,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'integer', minimum: 1, maximum: STABILITY_NIGHTS.max, default: STABILITY_NIGHTS.default } },
        },
        response: { 200: STABILITY_SCHEMA, ...errors },
      },
    },
    async (request, reply) => {
      const [rows, sizes] = await Promise.all([source.stability(request.query.limit ?? STABILITY_NIGHTS.default), source.versionSizes()]);
      const nights = rows.reverse();
      const versions = new Set(nights.map((n) => n.model_version));
      const totals = new Map<string, number>();
      for (const s of sizes) totals.set(s.model_version, (totals.get(s.model_version) ?? 0) + s.customers);
      reply.header('cache-control', 'no-store');
      return {
        thresholds: source.thresholds(),
        nights,
        sizes: sizes
          .filter((s) => versions.has(s.model_version))
          .sort((a, b) => a.model_version.localeCompare(b.model_version) || a.segment_id - b.segment_id)
          .map((s) => ({ ...s, share: s.customers / totals.get(s.model_version)! })),
      };
    },
  );

  api.get<{ Params: { version: string; to: string } }>(
    '/v1/models/:version/transitions/:to',
    {
      preValidation: authenticate,
      schema: {
        summary: 'Customers by (segment in one version, segment in another), from marts.customer_segments',
        tags: ['segments'],
        security,
        params: { type: 'object', required: ['version', 'to'], properties: { version: VERSION_SCHEMA, to: VERSION_SCHEMA } },
        response: { 200: TRANSITIONS_SCHEMA, ...errors },
      },
    },
    async (request, reply) => {
      const { version: from, to } = request.params;
      const [a, b] = await Promise.all([source.model(from), source.model(to)]);
      for (const [v, m] of [
        [from, a],
        [to, b],
      ] as const) {
        if (m === null) return problem(reply, 404, 'Not Found', `no model version ${v} (GET /v1/models lists them)`);
      }
      const labelIn = (m: typeof a, id: number) => m?.segments.find((s) => s.id === id)?.label ?? null;
      const cells = (await source.transitions(from, to)).map((c) => ({
        from_id: c.from_id,
        from_label: labelIn(a, c.from_id),
        to_id: c.to_id,
        to_label: labelIn(b, c.to_id),
        customers: c.customers,
      }));
      const customers = cells.reduce((n, c) => n + c.customers, 0);
      const changed = cells.filter((c) => c.from_id !== c.to_id).reduce((n, c) => n + c.customers, 0);
      reply.header('cache-control', 'no-store');
      return { from, to, customers, changed, changed_share: customers > 0 ? changed / customers : 0, cells };
    },
  );

  api.get(
    '/v1/runs',
    {
      preValidation: authenticate,
      schema: {
        summary: 'Freshness: the last hourly_pipeline and nightly_segmentation runs, with links to the Temporal UI',
        tags: ['segments'],
        security,
        response: { 200: RUNS_SCHEMA, ...errors },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      const recentRuns = source.recentRuns;
      if (recentRuns === undefined)
        return {
          available: false,
          message: 'this API process has no Temporal client',
          dags: FRESHNESS_DAGS.map((d) => ({ dag_id: d, runs: [] })),
        };
      try {
        const dags: { dag_id: string; runs: DagRun[] }[] = [];
        for (const dagId of FRESHNESS_DAGS) dags.push({ dag_id: dagId, runs: await recentRuns(dagId, RUNS_PER_DAG) });
        return { available: true, message: null, dags };
      } catch (err) {
        // The address stays in the log: it names internal hosts.
        request.log.warn({ error: err instanceof Error ? err.message : String(err) }, 'freshness: Temporal did not answer');
        return {
          available: false,
          message: 'Temporal did not answer; the error is logged',
          dags: FRESHNESS_DAGS.map((d) => ({ dag_id: d, runs: [] })),
        };
      }
    },
  );
}
