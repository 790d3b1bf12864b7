/**
 * Customer routes beside the single profile route: `POST /v1/profiles:batchGet` (up to 100
 * profiles through the same cache and stale rules) and `GET /v1/customers/:id/explain` (why a
 * customer sits in its segment, computed with the real-time assignment functions of
 * core/segmentation, so it agrees with what reclassification would decide).
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { CUSTOMER_ID_MAX_LENGTH, CUSTOMER_ID_RULE, describeInvalidCustomerId, isCustomerId } from '../core/customer-id.js';
import { assignCustomer, customerFeatureRow, nearestCentroid, type SegmentModel } from '../core/segmentation/index.js';
import { PROBLEM_SCHEMA, problem } from './problem.js';
import { VERSION_SCHEMA, errors, nullableNumber, security, type Authenticate } from './schema-parts.js';
import { populationCentroid, type SegmentsSource } from './segments.js';

export const BATCH_GET_MAX_IDS = 100;
/** The batch body: 100 ids of 128 characters, quoted and comma-separated, with room to spare. */
export const BATCH_GET_BODY_LIMIT_BYTES = 16 * 1024;

/** One profile lookup through the cache (api/server.ts): the 200 body, or the problem to answer. */
export type ProfileAnswer<Body> =
  /** `attributes`: the stored profile's demographics, which categorical and ordinal features read. */
  | { ok: true; body: Body; attributes?: Readonly<Record<string, unknown>> | null }
  | { ok: false; statusCode: 404 | 503; error: string; message: string; retryAfterSeconds?: number };

export interface CustomerRoutesDeps<Body extends { segment_id: number; model_version: string; features: Record<string, number | null> }> {
  authenticate: Authenticate;
  lookup(id: string, log: FastifyBaseLogger): Promise<ProfileAnswer<Body>>;
  /** The single route's 200 schema, reused for each profile in a batch and in an explanation. */
  profileSchema: object;
  /** Turns on the explain route. */
  segments?: SegmentsSource;
}

export function registerCustomerRoutes<Body extends { segment_id: number; model_version: string; features: Record<string, number | null> }>(
  api: FastifyInstance,
  deps: CustomerRoutesDeps<Body>,
) {
  const { authenticate, lookup, profileSchema } = deps;

  const batchSchema = {
    summary: `Up to ${BATCH_GET_MAX_IDS} online profiles in one call, in the order asked, with the single route's cache and stale rules`,
    tags: ['profiles'],
    security,
    body: {
      type: 'object',
      required: ['ids'],
      additionalProperties: false,
      properties: {
        ids: {
          type: 'array',
          minItems: 1,
          maxItems: BATCH_GET_MAX_IDS,
          items: { type: 'string', maxLength: CUSTOMER_ID_MAX_LENGTH, description: CUSTOMER_ID_RULE },
        },
      },
    },
    response: {
      200: {
        type: 'object',
        required: ['profiles'],
        properties: {
          profiles: {
            type: 'array',
            items: {
              type: 'object',
              required: ['customer_id', 'status', 'profile', 'message'],
              properties: {
                customer_id: { type: 'string' },
                status: { type: 'string', enum: ['found', 'not_found', 'unavailable'] },
                profile: { ...profileSchema, type: ['object', 'null'] },
                message: { type: ['string', 'null'], description: 'why there is no profile' },
              },
            },
          },
        },
      },
      ...errors,
      413: PROBLEM_SCHEMA,
      415: PROBLEM_SCHEMA,
    },
  };
  // `::` is a literal colon in a Fastify path (Google's custom-method style).
  api.post<{ Body: { ids: string[] } }>(
    '/v1/profiles::batchGet',
    { preValidation: authenticate, schema: batchSchema, bodyLimit: BATCH_GET_BODY_LIMIT_BYTES },
    async (request, reply) => {
      const { ids } = request.body;
      const bad = ids.findIndex((id) => !isCustomerId(id));
      if (bad >= 0)
        return problem(reply, 400, 'Bad Request', `ids[${bad}] ${describeInvalidCustomerId(ids[bad])}: expected ${CUSTOMER_ID_RULE}`);
      const unique = [...new Set(ids)];
      const answers = new Map(await Promise.all(unique.map(async (id) => [id, await lookup(id, request.log)] as const)));
      reply.header('cache-control', 'no-store');
      return {
        profiles: ids.map((id) => {
          const a = answers.get(id)!;
          return a.ok
            ? { customer_id: id, status: 'found', profile: a.body, message: null }
            : { customer_id: id, status: a.statusCode === 404 ? 'not_found' : 'unavailable', profile: null, message: a.message };
        }),
      };
    },
  );

  const segments = deps.segments;
  if (segments === undefined) return;

  const explainSchema = {
    summary:
      'Why a customer sits in its segment: the distance to each centroid, the margin to the next segment, the features that pull it most',
    tags: ['profiles'],
    security,
    params: { type: 'object', properties: { id: { type: 'string', description: CUSTOMER_ID_RULE } } },
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { version: { ...VERSION_SCHEMA, description: 'explain with this model version (default: the current one)' } },
    },
    response: { 200: EXPLAIN_SCHEMA(profileSchema), ...errors, 503: PROBLEM_SCHEMA },
  };
  api.get<{ Params: { id: string }; Querystring: { version?: string } }>(
    '/v1/customers/:id/explain',
    { preValidation: authenticate, schema: explainSchema },
    async (request, reply) => {
      const id = request.params.id;
      if (!isCustomerId(id)) return problem(reply, 400, 'Bad Request', `customer id: expected ${CUSTOMER_ID_RULE}`);
      const version = request.query.version ?? (await segments.currentVersion());
      if (version === null) return problem(reply, 404, 'Not Found', 'no model has been promoted yet');
      const model = await segments.model(version);
      if (model === null) return problem(reply, 404, 'Not Found', `no model version ${version} (GET /v1/models lists them)`);
      const answer = await lookup(id, request.log);
      if (!answer.ok) {
        if (answer.retryAfterSeconds !== undefined) reply.header('retry-after', String(answer.retryAfterSeconds));
        return problem(reply, answer.statusCode, answer.error, answer.message);
      }
      reply.header('cache-control', 'no-store');
      return {
        customer_id: id,
        model_version: model.version,
        profile: answer.body,
        ...explainAssignment(model, answer.body, answer.attributes),
      };
    },
  );
}

/** The figures of an explanation: what assignCustomer decided and why, feature by feature. */
export function explainAssignment(
  model: SegmentModel,
  profile: { segment_id: number; model_version: string; features: Record<string, number | null> },
  attributes?: Readonly<Record<string, unknown>> | null,
) {
  // Demographics as the real-time path passes them, so categorical and ordinal features agree too.
  const assignment = assignCustomer(model, customerFeatureRow(profile.features, attributes));
  const own = assignment.index;
  // One centroid at a time through the same kernel, so each figure is the distance assignment compared.
  const squared = model.centroids.map((c) => nearestCentroid(assignment.vector, [c]).distance);
  let next: number | null = null;
  for (let i = 0; i < squared.length; i++) if (i !== own && (next === null || squared[i]! < squared[next]!)) next = i;
  const population = populationCentroid(model);
  const ownSegment = model.segments[own]!;
  const nextSegment = next === null ? null : model.segments[next]!;
  const features = model.preparation.features.map((f, j) => {
    const x = assignment.vector[j]!;
    const toOwn = (x - model.centroids[own]![j]!) ** 2;
    const toNext = next === null ? null : (x - model.centroids[next]![j]!) ** 2;
    const raw = profile.features[f.name];
    const present = typeof raw === 'number' && Number.isFinite(raw);
    return {
      name: f.name,
      value: present ? raw : f.fill,
      imputed: !present,
      segment_centroid: ownSegment.centroid[f.name] ?? null,
      next_centroid: nextSegment === null ? null : (nextSegment.centroid[f.name] ?? null),
      population: population[j]!,
      pull: toNext === null ? 0 : toNext - toOwn,
    };
  });
  features.sort((a, b) => b.pull - a.pull || a.name.localeCompare(b.name));
  return {
    segment: { id: assignment.segmentId, label: assignment.label },
    agrees_with_profile: profile.segment_id === assignment.segmentId,
    distances: model.segments
      .map((s, i) => ({ segment_id: s.id, label: s.label, squared_distance: squared[i]!, distance: Math.sqrt(squared[i]!) }))
      .sort((a, b) => a.squared_distance - b.squared_distance),
    margin:
      nextSegment === null || assignment.margin === null
        ? null
        : { next_segment_id: nextSegment.id, next_label: nextSegment.label, squared: assignment.margin },
    features,
  };
}

const EXPLAIN_SCHEMA = (profileSchema: object) =>
  ({
    type: 'object',
    required: ['customer_id', 'model_version', 'profile', 'segment', 'agrees_with_profile', 'distances', 'margin', 'features'],
    properties: {
      customer_id: { type: 'string' },
      model_version: { type: 'string', description: 'the model the explanation assigns with' },
      profile: profileSchema,
      segment: {
        type: 'object',
        required: ['id', 'label'],
        properties: { id: { type: 'integer' }, label: { type: 'string' } },
        description: 'the segment real-time assignment gives the profile features with this model',
      },
      agrees_with_profile: { type: 'boolean', description: "whether that is the profile's stored segment" },
      distances: {
        type: 'array',
        description: 'to each centroid, nearest first (prepared space)',
        items: {
          type: 'object',
          required: ['segment_id', 'label', 'squared_distance', 'distance'],
          properties: {
            segment_id: { type: 'integer' },
            label: { type: 'string' },
            squared_distance: { type: 'number' },
            distance: { type: 'number' },
          },
        },
      },
      margin: {
        type: ['object', 'null'],
        description: 'squared distance to the next segment minus to its own (null with one segment)',
        required: ['next_segment_id', 'next_label', 'squared'],
        properties: { next_segment_id: { type: 'integer' }, next_label: { type: 'string' }, squared: { type: 'number' } },
      },
      features: {
        type: 'array',
        description: 'per feature, most pull toward its segment first; the pulls add up to the margin',
        items: {
          type: 'object',
          required: ['name', 'value', 'imputed', 'segment_centroid', 'next_centroid', 'population', 'pull'],
          properties: {
            name: { type: 'string' },
            value: { type: 'number', description: 'the profile value in original units (the training median when missing)' },
            imputed: { type: 'boolean' },
            segment_centroid: { ...nullableNumber, description: "its segment's centroid, original units" },
            next_centroid: { ...nullableNumber, description: "the next segment's centroid, original units" },
            population: { type: 'number', description: 'the population centroid, original units' },
            pull: { type: 'number', description: 'squared distance to the next centroid minus to its own, on this feature' },
          },
        },
      },
    },
  }) as const;
