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
import { createRegistrySegmentsSource, createTemporalRunsReader, type DagRunsReader } from '../../api/segments-store.js';
import { buildProfileApi, DOCS_PATH } from '../../api/server.js';
import { createLogger } from '../../core/logger.js';
import { loadModelVersion } from '../../stores/model-registry.js';
import { countSegments, startSegmentedStack, type SegmentedStack } from '../support/segments-stack.js';

const TOKEN = 'segments-api-token-0123456789';
let stack: SegmentedStack;
let app: ReturnType<typeof buildProfileApi>;
let base: string;
let doc: OpenAPIV3.Document;
let runs: DagRunsReader;
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats.default(ajv);

before(async () => {
  stack = await startSegmentedStack('segapi', { customers: 300, nights: 2 });
  const { config, logger } = stack.harness;
  runs = createTemporalRunsReader(config);
  app = buildProfileApi({
    store: createFirestoreProfileStore({ firestore: stack.clients.firestore, config, logger }),
    tokens: [TOKEN],
    logger: createLogger({ level: 'warn', name: 'test-segments-api' }),
    rateLimit: false,
    segments: createRegistrySegmentsSource({ bigquery: stack.clients.bigquery, storage: stack.clients.storage, config, runs }),
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
  await runs?.close();
  await stack?.close();
});

async function get(path: string, token: string | null = TOKEN) {
  const res = await fetch(`${base}${path}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function post(path: string, body: string, opts: { token?: string | null; type?: string } = {}) {
  const token = opts.token === undefined ? TOKEN : opts.token;
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    body,
    headers: { 'content-type': opts.type ?? 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Asserts the answer conforms to the document's schema for this route and status. */
function assertConforms(route: string, status: number, body: unknown, method: 'get' | 'post' = 'get') {
  const response = doc.paths[route]?.[method]?.responses[String(status)] as OpenAPIV3.ResponseObject | undefined;
  const schema = response?.content?.['application/json']?.schema;
  assert.ok(schema, `the OpenAPI document has a schema for ${method.toUpperCase()} ${route} ${status}`);
  const validate = ajv.compile(schema);
  assert.ok(validate(body), `${method.toUpperCase()} ${route} ${status}: ${ajv.errorsText(validate.errors)}`);
}

/** Each customer's segment of `version`, read directly from marts.customer_segments. */
async function assignments(version: string): Promise<Map<string, number>> {
  const [rows] = await stack.clients.bigquery.query({
    query: `SELECT customer_id, segment_id FROM \`${stack.harness.config.gcp.projectId}.${stack.dataset}.customer_segments\` WHERE model_version = @v`,
    params: { v: version },
    types: { v: 'STRING' },
  });
  return new Map((rows as { customer_id: string; segment_id: number }[]).map((r) => [r.customer_id, Number(r.segment_id)]));
}

const HOSTILE_IDS = ['..%2F..%2Fx', '.', '..', '__name__', "a'%20OR%20'1'%3D'1", '%FF%FE', 'a%2Fb', '%20', 'x'.repeat(10_240)];

const NEW_ROUTES = [
  '/v1/segments/{id}/customers',
  '/v1/customers/{id}/explain',
  '/v1/models/{version}/transitions/{to}',
  '/v1/stability',
  '/v1/runs',
];

describe('segments API', () => {
  it('publishes a valid OpenAPI 3 document of every route, with an interactive page', async () => {
    assert.match(doc.openapi, /^3\./);
    for (const route of ['/v1/models', '/v1/models/{version}', '/v1/segments', '/v1/customers/{id}/profile', ...NEW_ROUTES])
      assert.ok(doc.paths[route]?.get, route);
    assert.ok(doc.paths['/v1/profiles:batchGet']?.post, 'POST /v1/profiles:batchGet');
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
        // One entry per dimension of the centroids: a categorical feature gives one per kept value.
        artifact.preparation.features.map((f) => f.name),
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

  it('GET /v1/models/:version reports cohesion and separation per segment as the artifact records them', async () => {
    const version = stack.versions[1]!;
    const res = await get(`/v1/models/${version}`);
    const artifact = (await loadModelVersion(stack.clients.storage, stack.bucket, version))!;
    const cohesion = res.body.cohesion as {
      silhouette: number;
      segments: { id: number; silhouette: number | null; nearest_centroid_distance: number | null }[];
    };
    assert.ok(artifact.cohesion, 'a new model records cohesion');
    assert.equal(cohesion.silhouette, artifact.cohesion.silhouette);
    assert.deepEqual(
      cohesion.segments.map((s) => [s.id, s.silhouette, s.nearest_centroid_distance]),
      artifact.cohesion.segments.map((c) => [artifact.segments[c.index]!.id, c.silhouette, c.nearest_centroid_distance]),
    );
  });

  it('GET /v1/segments/:id/customers pages through exactly the members in marts.customer_segments', async () => {
    const version = stack.versions[1]!;
    const expected = await assignments(version);
    const seen = new Map<string, number>();
    for (const id of new Set(expected.values())) {
      let token: string | null = null;
      let pages = 0;
      do {
        const res = await get(`/v1/segments/${id}/customers?limit=40${token === null ? '' : `&page_token=${token}`}`);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assertConforms('/v1/segments/{id}/customers', 200, res.body);
        const page = res.body.customers as { customer_id: string }[];
        assert.ok(page.length <= 40);
        for (const c of page) {
          assert.equal(seen.has(c.customer_id), false, `${c.customer_id} on two pages`);
          seen.set(c.customer_id, id);
        }
        token = res.body.next_page_token as string | null;
        pages++;
      } while (token !== null && pages < 100);
    }
    assert.deepEqual(new Map([...seen].sort()), new Map([...expected].sort()));
    const old = await get(
      `/v1/segments/${[...(await assignments(stack.versions[0]!)).values()][0]}/customers?version=${stack.versions[0]}&limit=1`,
    );
    assert.equal(old.status, 200);
    assert.equal(old.body.model_version, stack.versions[0]);
  });

  it('GET /v1/models/:a/transitions/:b counts the same moves as a direct query', async () => {
    const [v1, v2] = stack.versions as [string, string];
    const before = await assignments(v1);
    const after = await assignments(v2);
    let changed = 0;
    for (const [c, s] of after) if (before.has(c) && before.get(c) !== s) changed++;
    const res = await get(`/v1/models/${v1}/transitions/${v2}`);
    assert.equal(res.status, 200);
    assertConforms('/v1/models/{version}/transitions/{to}', 200, res.body);
    assert.deepEqual([res.body.customers, res.body.changed], [after.size, changed]);
    const cells = res.body.cells as { customers: number }[];
    assert.equal(
      cells.reduce((n, c) => n + c.customers, 0),
      after.size,
    );
  });

  it('GET /v1/stability: both nights, the alert thresholds, and sizes per version', async () => {
    const res = await get('/v1/stability');
    assert.equal(res.status, 200);
    assertConforms('/v1/stability', 200, res.body);
    const nights = res.body.nights as { model_version: string; previous_version: string | null; changed_share: number | null }[];
    assert.deepEqual(
      nights.map((n) => [n.model_version, n.previous_version]),
      [
        [stack.versions[0], null],
        [stack.versions[1], stack.versions[0]],
      ],
    );
    assert.equal(typeof nights[1]!.changed_share, 'number');
    assert.deepEqual(res.body.thresholds, stack.harness.config.segmentation.thresholds);
    const sizes = res.body.sizes as { model_version: string; segment_id: number; customers: number }[];
    for (const v of stack.versions) {
      assert.deepEqual(
        new Map(sizes.filter((s) => s.model_version === v).map((s) => [s.segment_id, s.customers])),
        await countSegments(stack, v),
      );
    }
  });

  it('GET /v1/runs: the nightly runs of this test with links into the Temporal UI', async () => {
    const res = await get('/v1/runs');
    assert.equal(res.status, 200);
    assertConforms('/v1/runs', 200, res.body);
    assert.equal(res.body.available, true, String(res.body.message));
    const dags = res.body.dags as { dag_id: string; runs: { workflow_id: string; status: string; url: string }[] }[];
    assert.deepEqual(
      dags.map((d) => d.dag_id),
      ['hourly_pipeline', 'nightly_segmentation'],
    );
    const nightly = dags[1]!.runs;
    assert.ok(nightly.length > 0, 'nightly runs listed');
    for (const r of nightly) assert.ok(r.url.startsWith(`${stack.harness.config.temporal.uiUrl}/namespaces/`), r.url);
    assert.ok(nightly.some((r) => r.status === 'COMPLETED'));
  });

  it('GET /v1/customers/:id/explain agrees with marts.customer_segments and the profile API', async () => {
    const version = stack.versions[1]!;
    const expected = await assignments(version);
    for (const customer of stack.population.rows.slice(0, 5).map((r) => r.customer_id)) {
      const res = await get(`/v1/customers/${customer}/explain`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assertConforms('/v1/customers/{id}/explain', 200, res.body);
      const body = res.body as {
        segment: { id: number };
        agrees_with_profile: boolean;
        model_version: string;
        distances: { segment_id: number; squared_distance: number }[];
        margin: { squared: number } | null;
        features: { pull: number }[];
      };
      const profile = await get(`/v1/customers/${customer}/profile`);
      assert.equal(profile.status, 200);
      assert.equal(body.model_version, version);
      assert.equal(body.segment.id, expected.get(customer), `${customer}: explain and customer_segments`);
      assert.equal(body.segment.id, profile.body.segment_id, `${customer}: explain and the profile API`);
      assert.equal(body.agrees_with_profile, true);
      assert.equal(body.distances[0]!.segment_id, body.segment.id, 'the nearest centroid is its segment');
      const pulls = body.features.reduce((n, f) => n + f.pull, 0);
      assert.ok(Math.abs(pulls - body.margin!.squared) < 1e-9, `pulls ${pulls} add up to the margin ${body.margin!.squared}`);
    }
  });

  it('POST /v1/profiles:batchGet answers each id in order, as the single route does', async () => {
    const [a, b] = stack.population.rows.map((r) => r.customer_id);
    const res = await post('/v1/profiles:batchGet', JSON.stringify({ ids: [a, 'cust-does-not-exist', b, a] }));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assertConforms('/v1/profiles:batchGet', 200, res.body, 'post');
    const profiles = res.body.profiles as { customer_id: string; status: string; profile: Record<string, unknown> | null }[];
    assert.deepEqual(
      profiles.map((p) => [p.customer_id, p.status]),
      [
        [a, 'found'],
        ['cust-does-not-exist', 'not_found'],
        [b, 'found'],
        [a, 'found'],
      ],
    );
    for (const p of profiles.filter((x) => x.status === 'found')) {
      const single = await get(`/v1/customers/${p.customer_id}/profile`);
      assert.deepEqual({ ...p.profile, stale: false }, { ...single.body, stale: false });
    }
  });

  it('the new routes: 401 without or with a wrong token, 4xx and no data for hostile ids and bodies', async () => {
    const [v1, v2] = stack.versions as [string, string];
    const customer = stack.population.rows[0]!.customer_id;
    const routes: [string, string][] = [
      [`/v1/segments/0/customers`, '/v1/segments/{id}/customers'],
      [`/v1/customers/${customer}/explain`, '/v1/customers/{id}/explain'],
      [`/v1/models/${v1}/transitions/${v2}`, '/v1/models/{version}/transitions/{to}'],
      ['/v1/stability', '/v1/stability'],
      ['/v1/runs', '/v1/runs'],
    ];
    for (const [path, route] of routes) {
      for (const token of [null, 'wrong-token-0123456789']) {
        const res = await get(path, token);
        assert.equal(res.status, 401, `${path} with ${token}`);
        assertConforms(route, 401, res.body);
      }
    }
    for (const token of [null, 'wrong-token-0123456789']) {
      const res = await post('/v1/profiles:batchGet', JSON.stringify({ ids: [customer] }), { token });
      assert.equal(res.status, 401);
      assert.equal(res.body.profiles, undefined);
    }
    const is4xx = (status: number) => status >= 400 && status < 500;
    for (const id of HOSTILE_IDS) {
      for (const path of [
        `/v1/customers/${id}/explain`,
        `/v1/segments/${id}/customers`,
        `/v1/segments/0/customers?page_token=${id}`,
        `/v1/segments/0/customers?version=${id}`,
        `/v1/models/${id}/transitions/${v2}`,
        `/v1/models/${v1}/transitions/${id}`,
      ]) {
        const res = await get(path);
        assert.ok(is4xx(res.status), `${path.slice(0, 60)} -> ${res.status}`);
        assert.equal(res.body.customers ?? res.body.cells ?? res.body.features, undefined, path.slice(0, 60));
      }
    }
    for (const path of [
      '/v1/segments/0/customers?limit=0',
      '/v1/segments/0/customers?limit=501',
      '/v1/segments/-1/customers',
      '/v1/stability?limit=0',
    ]) {
      const res = await get(path);
      assert.equal(res.status, 400, path);
    }
    const forged = await get(`/v1/segments/0/customers?page_token=${Buffer.from('../x').toString('base64url')}`);
    assert.equal(forged.status, 400);
    assertConforms('/v1/segments/{id}/customers', 400, forged.body);
    assert.equal((await get('/v1/segments/999/customers')).status, 404);
    const unknown = await get('/v1/customers/cust-does-not-exist/explain');
    assert.equal(unknown.status, 404);
    assertConforms('/v1/customers/{id}/explain', 404, unknown.body);
    const bodies: [string, string?][] = [
      ['not json'],
      ['{"ids": []}'],
      ['{"ids": [{"a": 1}]}'],
      ['{"id": "x"}'],
      ['[]'],
      ['null'],
      [JSON.stringify({ ids: Array.from({ length: 101 }, (_, i) => `c-${i}`) })],
      [JSON.stringify({ ids: ['..'] })],
      [JSON.stringify({ ids: ['a/b'] })],
      [JSON.stringify({ ids: ['x'.repeat(129)] })],
      [JSON.stringify({ ids: ['x'.repeat(20_000)] })],
      ['{"ids": ["a"]}', 'text/plain'],
      ['<ids>a</ids>', 'application/xml'],
      ['{"__proto__": {"ids": ["a"]}}'],
    ];
    for (const [body, type] of bodies) {
      const res = await post('/v1/profiles:batchGet', body, { type });
      assert.ok(is4xx(res.status), `${body.slice(0, 40)} (${type ?? 'json'}) -> ${res.status}`);
      assert.equal(res.body.profiles, undefined, body.slice(0, 40));
      if (res.status === 400) assertConforms('/v1/profiles:batchGet', 400, res.body, 'post');
    }
  });
});
