/**
 * The segments API over real HTTP on the real local stack: a model trained and promoted by the
 * nightly_segmentation DAG, read back through the model registry; the OpenAPI document validated
 * with a maintained validator, and every answer checked against it.
 */
import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { OpenAPIV3 } from 'openapi-types';
import { createFirestoreProfileStore } from '../../api/firestore-store.js';
import { createRegistrySegmentsSource } from '../../api/segments-store.js';
import { buildProfileApi, DOCS_PATH } from '../../api/server.js';
import { createLogger } from '../../core/logger.js';
import { loadModelVersion } from '../../stores/model-registry.js';
import { countSegments, startSegmentedStack, type SegmentedStack } from '../support/segments-stack.js';

const TOKEN = 'segments-api-token-0123456789';
let stack: SegmentedStack;
let app: ReturnType<typeof buildProfileApi>;
let base: string;
let doc: OpenAPIV3.Document;
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats.default(ajv);

before(async () => {
  stack = await startSegmentedStack('segapi', { customers: 300, nights: 2 });
  const { config, logger } = stack.harness;
  app = buildProfileApi({
    store: createFirestoreProfileStore({ firestore: stack.clients.firestore, config, logger }),
    tokens: [TOKEN],
    logger: createLogger({ level: 'warn', name: 'test-segments-api' }),
    rateLimit: false,
    segments: createRegistrySegmentsSource({ bigquery: stack.clients.bigquery, storage: stack.clients.storage, config }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const res = await fetch(`${base}${DOCS_PATH}/json`);
  assert.equal(res.status, 200);
  // validate() dereferences, so each response schema below is self-contained.
  doc = (await SwaggerParser.validate((await res.json()) as OpenAPIV3.Document)) as OpenAPIV3.Document;
});

after(async () => {
  await app?.close();
  await stack?.close();
});

async function get(path: string, token: string | null = TOKEN) {
  const res = await fetch(`${base}${path}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Asserts the answer conforms to the document's schema for this route and status. */
function assertConforms(route: string, status: number, body: unknown) {
  const response = doc.paths[route]?.get?.responses[String(status)] as OpenAPIV3.ResponseObject | undefined;
  const schema = response?.content?.['application/json']?.schema;
  assert.ok(schema, `the OpenAPI document has a schema for GET ${route} ${status}`);
  const validate = ajv.compile(schema);
  assert.ok(validate(body), `GET ${route} ${status}: ${ajv.errorsText(validate.errors)}`);
}

describe('segments API', () => {
  it('publishes a valid OpenAPI 3 document of every route, with an interactive page', async () => {
    assert.match(doc.openapi, /^3\./);
    for (const route of ['/v1/models', '/v1/models/{version}', '/v1/segments', '/v1/customers/{id}/profile'])
      assert.ok(doc.paths[route]?.get, route);
    assert.equal(doc.paths['/explorer'], undefined, 'static pages stay out of the document');
    const page = await fetch(`${base}${DOCS_PATH}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /swagger-ui/i);
  });

  it('GET /v1/models lists the versions of both nights, the last one current', async () => {
    const res = await get('/v1/models');
    assert.equal(res.status, 200);
    assertConforms('/v1/models', 200, res.body);
    const [v1, v2] = stack.versions;
    assert.equal(res.body.current, v2);
    const models = res.body.models as {
      version: string;
      k: number;
      is_current: boolean;
      promoted_at: string | null;
      metrics: { chosen_k: number; silhouette: number };
    }[];
    assert.deepEqual(
      models.map((m) => [m.version, m.is_current]),
      [
        [v2, true],
        [v1, false],
      ],
    );
    for (const m of models) {
      const artifact = (await loadModelVersion(stack.clients.storage, stack.bucket, m.version))!;
      assert.equal(m.k, artifact.centroids.length);
      assert.deepEqual([m.metrics.chosen_k, m.metrics.silhouette], [artifact.k_selection.chosen_k, artifact.metrics.silhouette]);
      assert.ok(m.promoted_at !== null, 'both nights were promoted');
    }
  });

  it('GET /v1/models/:version gives how k was chosen and the segments as the artifact records them', async () => {
    for (const version of stack.versions) {
      const res = await get(`/v1/models/${version}`);
      assert.equal(res.status, 200);
      assertConforms('/v1/models/{version}', 200, res.body);
      const artifact = (await loadModelVersion(stack.clients.storage, stack.bucket, version))!;
      const sel = res.body.k_selection as { chosen_k: number; candidates: { k: number; silhouette: number }[] };
      assert.equal(sel.chosen_k, artifact.k_selection.chosen_k);
      assert.deepEqual(
        sel.candidates.map((c) => [c.k, c.silhouette]),
        artifact.k_selection.candidates.map((c) => [c.k, c.silhouette]),
      );
      assert.deepEqual(res.body.segments, artifact.segments);
      const features = res.body.features as { name: string; population: number }[];
      assert.deepEqual(
        features.map((f) => f.name),
        artifact.features.map((f) => f.name),
      );
      for (const f of features) assert.ok(Number.isFinite(f.population), f.name);
    }
  });

  it("GET /v1/segments: the current model's segments with the counts of marts.customer_segments", async () => {
    for (const [path, version] of [
      ['/v1/segments', stack.versions[1]!],
      [`/v1/segments?version=${stack.versions[0]}`, stack.versions[0]!],
    ] as const) {
      const res = await get(path);
      assert.equal(res.status, 200, path);
      assertConforms('/v1/segments', 200, res.body);
      assert.deepEqual([res.body.model_version, res.body.size_source], [version, 'customer_segments']);
      const segments = res.body.segments as { id: number; size: number; share: number; centroid: Record<string, number> }[];
      assert.deepEqual(new Map(segments.map((s) => [s.id, s.size])), await countSegments(stack, version));
      assert.equal(res.body.customers, stack.population.rows.length);
      assert.ok(Math.abs(segments.reduce((a, s) => a + s.share, 0) - 1) < 1e-9);
      const names = (res.body.features as { name: string }[]).map((f) => f.name).sort();
      for (const s of segments) assert.deepEqual(Object.keys(s.centroid).sort(), names);
    }
  });

  it('401 without or with a wrong token; hostile versions get 4xx and no data', async () => {
    for (const path of ['/v1/models', `/v1/models/${stack.versions[0]}`, '/v1/segments']) {
      for (const token of [null, 'wrong-token-0123456789']) {
        const res = await get(path, token);
        assert.equal(res.status, 401, `${path} with ${token}`);
        assertConforms(path.startsWith('/v1/models/') ? '/v1/models/{version}' : path, 401, res.body);
      }
    }
    const hostile = [
      '..%2F..%2Fcurrent',
      '..%2Fcurrent',
      'current.json%00',
      "v1'%20OR%20'1'%3D'1",
      '%FF%FE',
      'a%2Fb',
      '.hidden',
      '%20',
      'x'.repeat(10_240),
    ];
    for (const id of hostile) {
      const model = await get(`/v1/models/${id}`);
      assert.ok(model.status >= 400 && model.status < 500, `/v1/models/${id.slice(0, 30)} -> ${model.status}`);
      assert.equal(model.body.segments, undefined);
      const segments = await get(`/v1/segments?version=${id}`);
      assert.ok(segments.status >= 400 && segments.status < 500, `/v1/segments?version=${id.slice(0, 30)} -> ${segments.status}`);
      assert.equal(segments.body.segments, undefined);
    }
    const unknown = await get('/v1/models/v20990101T000000Z');
    assert.equal(unknown.status, 404);
    assertConforms('/v1/models/{version}', 404, unknown.body);
    const bad = await get('/v1/segments?version=..%2Fx');
    assert.equal(bad.status, 400);
    assertConforms('/v1/segments', 400, bad.body);
  });
});
