/**
 * The profile API: `GET /v1/customers/:id/profile` (bearer token) and `GET /healthz`; with a
 * segments source also the segments API (api/segments.ts) and the segment explorer page at
 * `/explorer`. The OpenAPI document of every route is served at `/docs/json`, its interactive page at `/docs`.
 *
 * Profiles come from a ProfileStore (Firestore in production) through
 * CachedProfileReader, which serves the last good profile, marked
 * `stale: true`, when the store is slow or down.
 */
import rateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROJECT_ROOT } from '../core/config.js';
import { CUSTOMER_ID_RULE, isCustomerId } from '../core/customer-id.js';
import type { Logger } from '../core/logger.js';
import type { Profile } from '../core/profile.js';
import { CachedProfileReader, type ProfileCacheOptions, type ProfileStore } from './cache.js';
import { registerCustomerRoutes, type ProfileAnswer } from './customer-routes.js';
import { PROBLEM_SCHEMA, problem } from './problem.js';
import { registerSegmentRoutes, type SegmentsSource } from './segments.js';

export type { ProfileStore } from './cache.js';

export interface ProfileApiOptions {
  store: ProfileStore;
  /** Accepted bearer tokens (config.api.tokens); at least one. */
  tokens: readonly string[];
  logger: Logger;
  cache?: ProfileCacheOptions;
  /** Requests per client IP per window; false turns limiting off. */
  rateLimit?: { max: number; timeWindowMs: number } | false;
  bodyLimitBytes?: number;
  /** Behind a load balancer: take the client IP (for rate limits, logs) from X-Forwarded-For. */
  trustProxy?: boolean | string | string[];
  /** How long /healthz waits for the store. */
  healthTimeoutMs?: number;
  /** The model registry: turns on the segments API and the explorer page. */
  segments?: SegmentsSource;
  /** Called once per profile request with how it was answered (metrics count stale ones). */
  onProfileRead?: (result: 'fresh' | 'stale' | 'not_found' | 'unavailable') => void;
}

/** Where the OpenAPI document and its interactive page are served. */
export const DOCS_PATH = '/docs';
export const EXPLORER_PATH = '/explorer';
const EXPLORER_DIR = fileURLToPath(new URL('./explorer/', import.meta.url));
/** The only files the explorer page loads from node_modules (served as /explorer/vendor/<path>). */
const EXPLORER_VENDOR_FILES = new Set([
  '/vega/build/vega.min.js',
  '/vega-lite/build/vega-lite.min.js',
  '/vega-embed/build/vega-embed.min.js',
]);

export const API_DEFAULTS = {
  rateLimit: { max: 1_200, timeWindowMs: 60_000 },
  // Only POST /v1/profiles:batchGet takes a body, under its own limit (BATCH_GET_BODY_LIMIT_BYTES).
  bodyLimitBytes: 1_024,
  healthTimeoutMs: 1_000,
} as const;

/** The body of a profile response. Demographics stay in Firestore: websites get segments, not personal data. */
export interface ProfileResponse {
  customer_id: string;
  segment_id: number;
  segment_label: string;
  /** The level above in the segment hierarchy; null for a profile assigned by a model without one. */
  parent_segment: { id: number; label: string } | null;
  model_version: string;
  features: Profile['features'];
  rfm: Profile['rfm'];
  updated_at: string;
  stale: boolean;
}

/**
 * The 200 body, for Fastify's compiled serializer, which is cheaper than JSON.stringify on
 * every answer. Features are open-ended by name, so they stay an open map.
 */
const nullableNumber = { type: ['number', 'null'] } as const;
const PROFILE_RESPONSE_SCHEMA = {
  type: 'object',
  required: ['customer_id', 'segment_id', 'segment_label', 'parent_segment', 'model_version', 'features', 'rfm', 'updated_at', 'stale'],
  properties: {
    customer_id: { type: 'string' },
    segment_id: { type: 'integer' },
    segment_label: { type: 'string' },
    parent_segment: {
      type: ['object', 'null'],
      required: ['id', 'label'],
      properties: { id: { type: 'integer' }, label: { type: 'string' } },
      description: 'The parent segment: the level above in the segment hierarchy; null when the model has none',
    },
    model_version: { type: 'string' },
    features: { type: 'object', additionalProperties: nullableNumber },
    rfm: {
      type: 'object',
      required: ['recency_days', 'frequency', 'monetary', 'r_score', 'f_score', 'm_score'],
      properties: {
        recency_days: nullableNumber,
        frequency: { type: 'number' },
        monetary: { type: 'number' },
        r_score: { type: 'number' },
        f_score: { type: 'number' },
        m_score: { type: 'number' },
      },
    },
    updated_at: { type: 'string' },
    stale: { type: 'boolean' },
  },
} as const;

const AUTH_SCHEME = /^Bearer[ ]+([\x21-\x7e]{1,4096})[ ]*$/i;
/** Probe results are shared for this long, so /healthz floods do not turn into Firestore floods. */
const HEALTH_PROBE_REUSE_MS = 1_000;

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

export function buildProfileApi(options: ProfileApiOptions) {
  if (options.tokens.length === 0 || options.tokens.some((t) => t.trim().length === 0)) {
    throw new Error(
      'profile API: expected at least one non-empty bearer token (SEGFLOW_API_TOKENS); without one every request would be refused',
    );
  }
  // Hashing gives every comparison the same length, so timingSafeEqual works
  // and neither the token nor its length leaks through timing.
  const tokenDigests = options.tokens.map(digest);
  const logger = options.logger.child({ component: 'profile-api' });
  const reader = new CachedProfileReader(options.store, logger, options.cache);
  const limits = options.rateLimit ?? API_DEFAULTS.rateLimit;
  const healthTimeoutMs = options.healthTimeoutMs ?? API_DEFAULTS.healthTimeoutMs;

  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: options.bodyLimitBytes ?? API_DEFAULTS.bodyLimitBytes,
    trustProxy: options.trustProxy ?? false,
    // Long ids must reach our validator (400 with a reason) rather than the router (a bare 404).
    routerOptions: { maxParamLength: 16 * 1024 },
    requestTimeout: 10_000,
    // Malformed URLs (bad percent-encoding, non-UTF-8) get the same error shape as everything else,
    // without echoing the URL back.
    frameworkErrors: (err, _request, reply) => {
      const status = (err as { statusCode?: number }).statusCode ?? 400;
      return problem(
        reply,
        status,
        httpError(status),
        status === 400 ? 'the request URL is not valid (check its percent-encoding)' : err.message,
      );
    },
  });

  // No background store reads after close (the caller may close the store's client next).
  app.addHook('onClose', async () => reader.close());

  app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
    const status = err.statusCode ?? 500;
    if (status < 500) return problem(reply, status, httpError(status), err.message);
    request.log.error({ err }, 'request failed');
    return problem(reply, 500, 'Internal Server Error', 'the profile API failed unexpectedly; the error is logged');
  });
  app.setNotFoundHandler((request, reply) => problem(reply, 404, 'Not Found', `no route ${request.method} ${request.url.slice(0, 200)}`));

  function authenticate(request: FastifyRequest, reply: FastifyReply, done: () => void) {
    const header = request.headers.authorization;
    const challenge = 'Bearer realm="segflow-profiles"';
    if (header === undefined) {
      reply.header('www-authenticate', challenge);
      problem(reply, 401, 'Unauthorized', 'expected an Authorization: Bearer <token> header');
      return;
    }
    const token = AUTH_SCHEME.exec(header)?.[1];
    let valid = false;
    if (token !== undefined) {
      const presented = digest(token);
      for (const known of tokenDigests) valid = timingSafeEqual(presented, known) || valid;
    }
    if (!valid) {
      reply.header('www-authenticate', `${challenge}, error="invalid_token"`);
      problem(reply, 401, 'Unauthorized', 'the bearer token is not valid for this API');
      return;
    }
    done();
  }

  /** One profile through the cache: what the single route and the batch route answer for it. */
  async function lookupProfile(id: string, log: FastifyBaseLogger): Promise<ProfileAnswer<ProfileResponse>> {
    const read = await reader.read(id);
    options.onProfileRead?.(read.kind);
    switch (read.kind) {
      case 'fresh':
        return { ok: true, body: toResponse(read.profile, false), attributes: read.profile.demographics };
      case 'stale':
        log.debug({ customerId: id, reason: read.reason, cachedAt: new Date(read.cachedAt).toISOString() }, 'served a cached profile');
        return { ok: true, body: toResponse(read.profile, true), attributes: read.profile.demographics };
      case 'not_found':
        return { ok: false, statusCode: 404, error: 'Not Found', message: `no profile for customer ${id}` };
      case 'unavailable':
        log.warn({ customerId: id, reason: read.reason }, 'profile store unavailable and nothing cached');
        return {
          ok: false,
          statusCode: 503,
          error: 'Service Unavailable',
          message: `${read.reason}, and no cached profile exists for this customer; retry in a few seconds`,
          retryAfterSeconds: 5,
        };
    }
  }

  let probe: { at: number; result: Promise<{ reachable: boolean; error?: string }> } | undefined;
  function probeStore() {
    const ping = options.store.ping?.bind(options.store);
    if (ping === undefined) return Promise.resolve(undefined);
    if (probe === undefined || Date.now() - probe.at > HEALTH_PROBE_REUSE_MS) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${healthTimeoutMs} ms`)), healthTimeoutMs);
      });
      const result = Promise.race([Promise.resolve().then(ping), deadline]).then(
        () => ({ reachable: true }),
        (err: unknown) => ({ reachable: false, error: err instanceof Error ? err.message.slice(0, 300) : String(err) }),
      );
      void result.finally(() => clearTimeout(timer));
      probe = { at: Date.now(), result };
    }
    return probe.result;
  }

  if (limits !== false) {
    app.register(rateLimit, { global: true, max: limits.max, timeWindow: limits.timeWindowMs, keyGenerator: (request) => request.ip });
  }

  // Before the routes, so it sees them all.
  app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'segflow profile and segments API', version: '1' },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'one of SEGFLOW_API_TOKENS' } } },
    },
  });
  app.register(swaggerUi, { routePrefix: DOCS_PATH });

  // Routes live in a plugin registered after the rate limiter, so it sees them.
  app.register(async (api) => {
    // 200 even when the store is down: this process still serves cached
    // profiles, so an orchestrator must neither restart nor drain it.
    const healthSchema = { summary: 'Liveness, and whether the profile store answers (no token)', tags: ['health'] };
    api.get('/healthz', { schema: healthSchema }, async (request, reply) => {
      const health = await probeStore();
      const store = health === undefined ? 'unknown' : health.reachable ? 'reachable' : 'unreachable';
      // The error stays in the log: this route is public and the message names internal hosts.
      if (health?.error !== undefined) request.log.warn({ error: health.error }, 'health probe: profile store unreachable');
      reply.header('cache-control', 'no-store');
      return { status: store === 'unreachable' ? 'degraded' : 'ok', store, cached_profiles: reader.size };
    });

    // preValidation, not onRequest: the rate limiter appends its onRequest hook to the
    // route's, and it must run first so token guessing is rate-limited too.
    const profileSchema = {
      summary: "A customer's online profile: segment, model version, features and RFM scores",
      tags: ['profiles'],
      security: [{ bearerAuth: [] }],
      params: { type: 'object', properties: { id: { type: 'string', description: CUSTOMER_ID_RULE } } },
      response: {
        200: PROFILE_RESPONSE_SCHEMA,
        400: PROBLEM_SCHEMA,
        401: PROBLEM_SCHEMA,
        404: PROBLEM_SCHEMA,
        429: PROBLEM_SCHEMA,
        503: PROBLEM_SCHEMA,
      },
    };
    api.get<{ Params: { id: string } }>(
      '/v1/customers/:id/profile',
      { preValidation: authenticate, schema: profileSchema },
      async (request, reply) => {
        const id = request.params.id;
        if (!isCustomerId(id)) {
          return problem(reply, 400, 'Bad Request', `customer id: expected ${CUSTOMER_ID_RULE}`);
        }
        reply.header('cache-control', 'no-store');
        const answer = await lookupProfile(id, request.log);
        if (answer.ok) return answer.body;
        if (answer.retryAfterSeconds !== undefined) reply.header('retry-after', String(answer.retryAfterSeconds));
        return problem(reply, answer.statusCode, answer.error, answer.message);
      },
    );

    registerCustomerRoutes(api, {
      authenticate,
      lookup: lookupProfile,
      profileSchema: PROFILE_RESPONSE_SCHEMA,
      segments: options.segments,
    });
    if (options.segments !== undefined) registerSegmentRoutes(api, { source: options.segments, authenticate });
  });

  if (options.segments !== undefined) {
    // Static files only: the page asks for the token and calls the API with it, so nothing here is secret.
    app.register(fastifyStatic, { root: EXPLORER_DIR, prefix: `${EXPLORER_PATH}/`, index: 'index.html' });
    // Relative asset paths in the page need the trailing slash.
    app.get(EXPLORER_PATH, { schema: { hide: true } }, (_request, reply) => reply.redirect(`${EXPLORER_PATH}/`));
    app.register(fastifyStatic, {
      root: path.join(PROJECT_ROOT, 'node_modules'),
      prefix: `${EXPLORER_PATH}/vendor/`,
      decorateReply: false,
      allowedPath: (pathName) => EXPLORER_VENDOR_FILES.has(pathName),
    });
  }

  return app;
}

function toResponse(p: Profile, stale: boolean): ProfileResponse {
  return {
    customer_id: p.customer_id,
    segment_id: p.segment_id,
    segment_label: p.segment_label,
    parent_segment: p.parent_segment ? { id: p.parent_segment.id, label: p.parent_segment.label } : null,
    model_version: p.model_version,
    features: p.features,
    rfm: p.rfm,
    updated_at: p.updated_at,
    stale,
  };
}

function httpError(status: number): string {
  const names: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    404: 'Not Found',
    405: 'Method Not Allowed',
    413: 'Payload Too Large',
    415: 'Unsupported Media Type',
    429: 'Too Many Requests',
  };
  return names[status] ?? 'Client Error';
}
export type ProfileApi = ReturnType<typeof buildProfileApi>;
