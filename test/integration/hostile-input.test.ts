/**
 * Hostile input end to end, on the real local stack: messages whose every free-text field
 * carries SQL fragments, template syntax, control characters, very long strings, deep nesting
 * and non-UTF-8 bytes go through the real ingestEvents workflow (worker in this process), the
 * loader into BigQuery raw.events, and the stg_events and fct_orders models. Each one must end
 * up as data: stored verbatim (lake object and BigQuery compared string for string) or
 * quarantined with a reason naming what was wrong; the sentinel tables and control events beside
 * them must not change, and no activity or query may fail.
 *
 * The same messages reach the trigger listener (the profile path): hostile customer ids start
 * no workflow and write nothing to Firestore, and the profile API answers hostile paths with 4xx.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { buildProfileApi } from '../../api/server.js';
import { createFirestoreProfileStore } from '../../api/firestore-store.js';
import { createIngestActivities } from '../../activities/ingest.js';
import { createWarehouseActivities, type WarehouseActivities } from '../../activities/warehouse.js';
import { isCustomerId } from '../../core/customer-id.js';
import { DEFAULT_MAX_DEPTH, type ReasonCode } from '../../core/events.js';
import { hourStartOf, type LakeRecord, type QuarantineRecord } from '../../core/lake.js';
import { makeHostileEvent } from '../../demo/personas.js';
import { wellFormed } from '../../core/realtime-features.js';
import { qualifiedTable } from '../../elt/names.js';
import { createTriggerListener, type TriggerListener } from '../../workers/trigger-listener.js';
import type { IngestCounters } from '../../workflows/ingest-messages.js';
import { RECLASSIFY_WORKFLOW, reclassifyStateQuery, reclassifyWorkflowId } from '../../workflows/reclassify-messages.js';
import type { IngestEventsInput } from '../../workflows/ingest-events.js';
import { openTopic, publishAll, type OutgoingMessage } from '../../scripts/lib/publisher.js';
import { readLake } from '../support/ingest-fixtures.js';
import { installCurrentModel, twoSegmentModel } from '../support/realtime-fixtures.js';
import { startHarness, type IntegrationHarness } from '../support/stack.js';

const id = randomUUID().slice(0, 8);
const DS = `hostile_${id}`;
const MAX_BYTES = 65_536;
const TOKEN = `hostile-api-token-${id}`;
const MODEL_VERSION = `hostile-${id}`;
const BUYER = `hostile-buyer-${id}`;

const SQL = [
  "'; DROP TABLE raw.events; --",
  `'; DROP TABLE raw_${DS}.events; --`,
  `'; DELETE FROM staging_${DS}.sentinel WHERE TRUE; --`,
  '" OR 1=1 --',
  "' OR '1'='1",
  '`; DROP TABLE `segflow-local.marts.customer_features`; --',
  '@interval_start',
  '@@dataset_id',
  '\\',
  "\\'; SELECT 1; --",
  '*/ SELECT 1 /*',
  '# not a comment',
  "x'); TRUNCATE TABLE raw.events; --",
];
const TEMPLATE = [
  '{{ customer_id }}',
  "{{ ref('stg_events') }}",
  "{{ source('raw', 'events') }}",
  '${process.env}',
  '${process.exit(1)}',
  '{% for x in range(999999999) %}{% endfor %}',
  '{# comment #}',
  '#{7*7}',
  '%s%n%x%d',
];
const CONTROL = [
  '\u0000',
  'a\u0000b',
  'line1\r\nline2\n{"event_id":"forged"}',
  '\u001b[31mred\u001b[0m\u001b]0;title\u0007',
  '\u202eevil\u202c',
  '\u2028\u2029\u0085',
  '\u0007\b\f\v\t',
  '\ufeffbom',
  '\ud800 lone high surrogate',
  'lone low \udfff',
  '💥 ünïcödé 中文 𝕳',
];
const STRINGS = [...SQL, ...TEMPLATE, ...CONTROL];

function hostEnv(): Record<string, string> {
  return {
    SEGFLOW_DATASET_RAW: `raw_${DS}`,
    SEGFLOW_DATASET_STAGING: `staging_${DS}`,
    SEGFLOW_DATASET_MARTS: `marts_${DS}`,
    SEGFLOW_EVENTS_TOPIC: `t-hostile-${id}`,
    SEGFLOW_LAKE_SUBSCRIPTION: `t-hostile-${id}-lake`,
    SEGFLOW_TRIGGER_SUBSCRIPTION: `t-hostile-${id}-triggers`,
    SEGFLOW_LAKE_BUCKET: `segflow-test-hostile-${id}`,
    SEGFLOW_FIRESTORE_PROFILES: `hostile_profiles_${id}`,
    SEGFLOW_EVENT_MAX_BYTES: String(MAX_BYTES),
    SEGFLOW_INGEST_ACK_DEADLINE_S: '10',
    SEGFLOW_RECLASSIFY_IDLE_MINUTES: '0.1',
    SEGFLOW_API_TOKENS: TOKEN,
  };
}

// ---------------------------------------------------------------------------
// The workload

interface StoredCase {
  name: string;
  eventId: string;
  /** The body as published (JSON), before any normalisation. */
  body: Record<string, unknown>;
  /** The properties the lake must hold, where they differ from the published ones. */
  expectedProperties?: Record<string, unknown>;
}
interface QuarantinedCase {
  name: string;
  message: OutgoingMessage;
  expect: { code: ReasonCode; path?: string };
}

const stored: StoredCase[] = [];
const quarantined: QuarantinedCase[] = [];
const messages: OutgoingMessage[] = [];
/** Customers whose (valid) purchases and profile updates reach the real-time path. */
const triggerCustomers = new Set<string>();
const now = new Date();
let caseNo = 0;

// A lone surrogate has no UTF-8 form: Pub/Sub refuses it in an attribute (checked below) and
// encodeURIComponent throws on it. Where text must be UTF-8, wellFormed() makes it U+FFFD.
function uri(s: string): string {
  return encodeURIComponent(wellFormed(s));
}

function attrsOf(body: Record<string, unknown>): Record<string, string> {
  return { type: String(body.type), event_id: String(body.event_id), schema: 'v1' };
}

function store(
  name: string,
  body: Record<string, unknown>,
  extraAttributes: Record<string, string> = {},
  expectedProperties?: Record<string, unknown>,
): void {
  const eventId = String(body.event_id);
  stored.push({ name, eventId, body, ...(expectedProperties ? { expectedProperties } : {}) });
  messages.push({ data: Buffer.from(JSON.stringify(body), 'utf8'), attributes: { ...attrsOf(body), ...extraAttributes, test_case: name } });
  if (body.type === 'purchase' || body.type === 'profile_update') triggerCustomers.add(String(body.customer_id));
}

function quarantine(name: string, data: Buffer, attributes: Record<string, string>, expect: QuarantinedCase['expect']): void {
  const message = { data, attributes: { ...attributes, test_case: name } };
  quarantined.push({ name, message, expect });
  messages.push(message);
}

function base(type: string, properties: Record<string, unknown>, customerId = `hostile-${id}-${caseNo}`): Record<string, unknown> {
  caseNo += 1;
  return { event_id: randomUUID(), customer_id: customerId, type, ts: new Date(now.getTime() - 60_000).toISOString(), properties };
}

/** A body of exactly `bytes` bytes of JSON: the filler goes into properties.note. */
function exactSize(body: Record<string, unknown>, bytes: number, prefix: string): Record<string, unknown> {
  const props = body.properties as Record<string, unknown>;
  props.note = prefix;
  const gap = bytes - Buffer.byteLength(JSON.stringify(body), 'utf8');
  assert.ok(gap >= 0, 'the prefix alone is over the size');
  props.note = prefix + 'x'.repeat(gap);
  assert.equal(Buffer.byteLength(JSON.stringify(body), 'utf8'), bytes);
  return body;
}

/** properties.nested, so that the body is exactly `depth` levels deep (root = 1, properties = 2). */
function nestedTo(depth: number): Record<string, unknown> {
  let inner: Record<string, unknown> = { leaf: "'; DROP TABLE raw.events; --" };
  for (let level = depth; level > 3; level--) inner = { d: inner };
  return inner;
}

function buildWorkload(): void {
  // Stored verbatim: hostile text wherever the contract allows free text.
  STRINGS.forEach((s, i) => {
    const key = `k${i} ${s}`;
    store(`click.element#${i}`, {
      ...base('click', { url: `https://shop.example/search?q=${uri(s)}`, element: s, [key]: s, list: [s, { s }] }),
      note: s,
    });
    // One buyer for all of them: one reclassify workflow rather than one per string.
    const orderId = s.length >= 1 && s.length <= 128 ? s : `o-${i}`;
    store(`purchase.order_id#${i}`, base('purchase', { order_id: orderId, amount: 12.5 + i, currency: 'USD', memo: s }, BUYER));
    if (s.length <= 32) store(`profile_update.city#${i}`, base('profile_update', { city: s, gender: s, country: 'DE' }, BUYER));
  });
  // The buyer's latest profile update (by event time, so it wins in whichever step applies it)
  // has lone surrogates, which Firestore cannot store: the profile write must still succeed.
  store('profile_update lone surrogates, latest', {
    ...base('profile_update', { city: '\ud800 lone high surrogate', gender: 'lone low \udfff', country: 'DE' }, BUYER),
    ts: new Date(now.getTime() - 1_000).toISOString(),
  });
  // Own keys that are special to JavaScript objects. The contract (test/unit/events.test.ts) accepts
  // the event and drops a __proto__ key rather than let it reach a prototype; everything else is kept.
  store(
    '__proto__ and constructor keys',
    base('click', {
      url: 'https://shop.example/',
      ...(JSON.parse('{"__proto__":{"polluted":"yes"},"constructor":{"prototype":1}}') as object),
    }),
    {},
    { url: 'https://shop.example/', constructor: { prototype: 1 } },
  );
  // Odd but valid customer ids (the whole allowed alphabet).
  for (const cid of [`o.brien@example.com-${id}`, `a:b-c_d.${id}`, `..${id}`, `__${id}`, `@@${id}`]) {
    store(`customer_id ${cid}`, base('purchase', { order_id: `o-${cid}`, amount: 3, currency: 'EUR' }, cid));
  }
  // Very long strings: exactly at the limit is stored, one byte over is quarantined.
  store(
    'size at the limit',
    exactSize(base('click', { url: 'https://shop.example/', element: null }), MAX_BYTES, `${SQL[0]}${TEMPLATE[0]}💥`),
  );
  const over = exactSize(base('click', { url: 'https://shop.example/', element: null }), MAX_BYTES + 1, SQL[0]!);
  quarantine('size over the limit', Buffer.from(JSON.stringify(over)), attrsOf(over), { code: 'too_large' });
  const persona = makeHostileEvent(1, now) as unknown as Record<string, unknown>;
  quarantine('makeHostileEvent (100 kB string)', Buffer.from(JSON.stringify(persona)), attrsOf(persona), { code: 'too_large' });
  // Deep nesting: at the cap is stored, one level more is quarantined.
  store('nesting at the cap', base('click', { url: 'https://shop.example/', nested: nestedTo(DEFAULT_MAX_DEPTH) }));
  const deep = base('click', { url: 'https://shop.example/', nested: nestedTo(DEFAULT_MAX_DEPTH + 1) });
  quarantine('nesting over the cap', Buffer.from(JSON.stringify(deep)), attrsOf(deep), { code: 'too_deep' });
  const veryDeep = base('click', { url: 'https://shop.example/' });
  quarantine(
    'nesting 100,000 deep',
    Buffer.from(JSON.stringify(veryDeep).replace('"properties":{', `"properties":{"n":${'['.repeat(100_000)}${']'.repeat(100_000)},`)),
    attrsOf(veryDeep),
    { code: 'too_deep' },
  );
  // Non-UTF-8 bytes in the data: in a value, in a key, and an encoded surrogate.
  const bad: Array<[string, number[]]> = [
    ['0xff', [0xff]],
    ['overlong slash', [0xc0, 0xaf]],
    ['encoded surrogate', [0xed, 0xa0, 0x80]],
    ['truncated euro sign', [0xe2, 0x82]],
    ['latin-1 e-acute', [0xe9]],
  ];
  for (const [what, bytes] of bad) {
    const body = base('click', { url: 'https://shop.example/', element: '@@' });
    const json = Buffer.from(JSON.stringify(body));
    const at = json.indexOf('@@');
    quarantine(`non-UTF-8 ${what}`, Buffer.concat([json.subarray(0, at), Buffer.from(bytes), json.subarray(at + 2)]), attrsOf(body), {
      code: 'not_utf8',
    });
  }
  // Hostile text where the contract allows none: the reason names the field.
  STRINGS.forEach((s, i) => {
    if (isCustomerId(s)) {
      // Hostile-looking but within the id alphabet (e.g. @interval_start): a valid customer, made unique per run.
      store(`customer_id#${i} (valid)`, base('purchase', { order_id: `o-id-${i}`, amount: 1, currency: 'USD' }, `${s}-${id}`));
    } else {
      const withId = base('purchase', { order_id: `o-${i}`, amount: 1, currency: 'USD' }, s);
      quarantine(`customer_id#${i}`, Buffer.from(JSON.stringify(withId)), attrsOf(withId), { code: 'invalid_value', path: 'customer_id' });
    }
    const withType: Record<string, unknown> = { ...base('click', { url: 'https://shop.example/' }), type: s };
    quarantine(
      `type#${i}`,
      Buffer.from(JSON.stringify(withType)),
      { event_id: String(withType.event_id) },
      { code: 'unknown_type', path: 'type' },
    );
    const withTs = { ...base('click', { url: 'https://shop.example/' }), ts: s };
    quarantine(`ts#${i}`, Buffer.from(JSON.stringify(withTs)), attrsOf(withTs), { code: 'bad_timestamp', path: 'ts' });
    const withEventId = { ...base('click', { url: 'https://shop.example/' }), event_id: s };
    quarantine(`event_id#${i}`, Buffer.from(JSON.stringify(withEventId)), { type: 'click' }, { code: 'invalid_value', path: 'event_id' });
    // Hostile attributes: a type attribute that disagrees with the body, a hostile schema version.
    const typeAttr = base('click', { url: 'https://shop.example/' });
    quarantine(
      `attributes.type#${i}`,
      Buffer.from(JSON.stringify(typeAttr)),
      { ...attrsOf(typeAttr), type: wellFormed(s), note: wellFormed(s) },
      { code: 'attribute_mismatch', path: 'attributes.type' },
    );
    const schemaAttr = base('click', { url: 'https://shop.example/' });
    quarantine(
      `attributes.schema#${i}`,
      Buffer.from(JSON.stringify(schemaAttr)),
      { ...attrsOf(schemaAttr), schema: wellFormed(s) },
      { code: 'unsupported_schema', path: 'attributes.schema' },
    );
  });
  // A valid event may carry hostile extra attributes; they are not part of the lake record.
  store(
    'hostile extra attributes',
    base('click', { url: 'https://shop.example/' }),
    Object.fromEntries(STRINGS.map((s, i) => [`x${i}`, wellFormed(s)])),
  );
  // Control events: ordinary traffic beside the hostile one must come through unchanged.
  for (let i = 0; i < 10; i++)
    store(`control#${i}`, base('page_view', { url: `https://shop.example/p/${i}`, duration_ms: 1000 + i }, `control-${id}-${i}`));
}

// ---------------------------------------------------------------------------

let h: IntegrationHarness;
let warehouse: WarehouseActivities;
let listener: TriggerListener;
let api: ReturnType<typeof buildProfileApi>;
let apiBase: string;
const sentinelCounts: Record<string, number> = {};

async function query<T = Record<string, unknown>>(sql: string): Promise<T[]> {
  const [rows] = await h.worker.clients.bigquery.query({ query: sql, location: h.config.gcp.location });
  return rows as T[];
}

async function tablesOf(dataset: string): Promise<string[]> {
  const [tables] = await h.worker.clients.bigquery.dataset(dataset).getTables();
  return tables
    .map((t) => String(t.id))
    .filter((t) => !t.startsWith('_'))
    .sort();
}

async function profileIds(): Promise<string[]> {
  const refs = await h.worker.clients.firestore.collection(h.config.firestore.profiles).listDocuments();
  return refs.map((r) => r.id).sort();
}

before(async () => {
  buildWorkload();
  h = await startHarness('hostile', { env: hostEnv() });
  const { pubsub, storage, bigquery, firestore } = h.worker.clients;
  await createIngestActivities({ pubsub, storage, config: h.config, logger: h.logger }).ensureIngestResources();
  warehouse = createWarehouseActivities({ bigquery, storage, config: h.config, logger: h.logger });
  await warehouse.ensureWarehouse();
  // Sentinel tables the SQL fragments name: they must keep their rows.
  // One script, one job: the shared emulator answers each job more slowly the more it has run.
  const datasets = Object.values(h.config.warehouse);
  await query(
    datasets
      .map((ds) => `CREATE TABLE ${qualifiedTable(h.config.gcp.projectId, ds, 'sentinel')} AS SELECT n FROM UNNEST([1, 2, 3]) AS n;`)
      .join('\n'),
  );
  for (const ds of datasets) sentinelCounts[ds] = 3;
  await installCurrentModel(storage, h.config.lake.bucket, twoSegmentModel(MODEL_VERSION));
  listener = await createTriggerListener({ pubsub, client: h.client, config: h.config, logger: h.logger });
  api = buildProfileApi({
    store: createFirestoreProfileStore({ firestore, config: h.config, logger: h.logger }),
    tokens: h.config.api.tokens,
    logger: h.logger,
    rateLimit: false,
    cache: { latencyBudgetMs: 500, uncachedTimeoutMs: 2_000 },
  });
  await api.listen({ host: '127.0.0.1', port: 0 });
  apiBase = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
});

after(async () => {
  await listener?.stop();
  await api?.close();
  if (!h) return;
  const { pubsub, firestore, storage } = h.worker.clients;
  const running: string[] = [];
  for await (const wf of h.client.workflow.list({
    query: `TaskQueue = '${h.config.temporal.taskQueue}' AND ExecutionStatus = 'Running'`,
  })) {
    running.push(wf.workflowId);
  }
  await Promise.allSettled(running.map((w) => h.client.workflow.getHandle(w).terminate('test finished')));
  await firestore.recursiveDelete(firestore.collection(h.config.firestore.profiles)).catch(() => undefined);
  // The datasets stay (unique names): dropping fct_orders here once made the shared BigQuery
  // emulator (v0.8.1) panic in its SQL driver and exit, taking it away from everyone.
  for (const sub of [h.config.pubsub.lakeSubscription, h.config.pubsub.triggerSubscription])
    await pubsub
      .subscription(sub)
      .delete()
      .catch(() => undefined);
  await pubsub
    .topic(h.config.pubsub.topic)
    .delete()
    .catch(() => undefined);
  await storage
    .bucket(h.config.lake.bucket)
    .deleteFiles({ force: true })
    .catch(() => undefined);
  await h.close();
});

describe('hostile input end to end', () => {
  let lakeRaw: LakeRecord[] = [];
  let lakeQuarantine: QuarantineRecord[] = [];

  it('ingestion stores every hostile-but-valid event verbatim in the lake and quarantines the rest with a reason naming the problem', async () => {
    const topic = await openTopic(h.worker.clients.pubsub, h.config.pubsub.topic);
    await publishAll(topic, messages);
    // Attributes are protobuf strings: text that is not UTF-8 (a lone surrogate) is refused at
    // publish, so it never reaches segflow. Counted below: had it gone through, pulled would be higher.
    const unretried = h.worker.clients.pubsub.topic(h.config.pubsub.topic, {
      batching: { maxMessages: 1 },
      gaxOpts: { retry: null, timeout: 10_000 },
    });
    const refused: Array<Record<string, string>> = [{ note: '\ud800' }, { [`k\udfff`]: 'v' }];
    for (const attributes of refused) {
      await assert.rejects(
        unretried.publishMessage({ data: Buffer.from('{}'), attributes }),
        `publishing attributes ${JSON.stringify(attributes)}`,
      );
    }
    const input: IngestEventsInput = {
      subscription: h.config.pubsub.lakeSubscription,
      maxMessages: 200,
      maxWaitMs: 1_000,
      concurrency: 2,
      stopWhenIdle: true,
    };
    const counters = (await h.client.workflow.execute('ingestEvents', {
      taskQueue: h.config.temporal.taskQueue,
      workflowId: `ingest/${h.config.pubsub.lakeSubscription}`,
      args: [input],
    })) as IngestCounters;
    // Pub/Sub delivers at least once: on a loaded machine a lease can lapse and a message come
    // twice. Each copy must be stored the same way; staging (below) holds each event once.
    const redelivered = counters.pulled - messages.length;
    assert.ok(redelivered >= 0 && redelivered < 20, `pulled ${counters.pulled} of ${messages.length} messages`);
    assert.equal(counters.written + counters.quarantined, counters.pulled);
    if (redelivered === 0) assert.deepEqual([counters.written, counters.quarantined], [stored.length, quarantined.length]);

    const lake = await readLake(h.worker.clients.storage, h.config.lake.bucket);
    lakeRaw = lake.raw;
    lakeQuarantine = lake.quarantine;
    // No record the workload did not send (a forged NDJSON line would be one), none missing.
    assert.deepEqual(
      [...new Set(lakeRaw.map((r) => r.event_id))].sort(),
      stored.map((c) => c.eventId.toLowerCase()).sort(),
      'the lake holds exactly the stored cases',
    );
    assert.equal(lakeRaw.length, counters.written, 'one lake record per written message');
    const byId = new Map(stored.map((c) => [c.eventId.toLowerCase(), c]));
    for (const r of lakeRaw) {
      const c = byId.get(r.event_id)!;
      const { properties, event_id: _e, customer_id, type, ts, ...extra } = c.body;
      assert.equal(r.customer_id, customer_id, `${c.name}: customer_id`);
      assert.equal(r.type, type, `${c.name}: type`);
      assert.equal(r.ts, new Date(String(ts)).toISOString(), `${c.name}: ts`);
      assert.deepStrictEqual(JSON.parse(r.properties), c.expectedProperties ?? properties, `${c.name}: properties verbatim`);
      assert.deepStrictEqual(r.extra === null ? {} : JSON.parse(r.extra), extra, `${c.name}: extra fields verbatim`);
    }

    const caseOf = (q: QuarantineRecord) => (JSON.parse(q.attributes) as Record<string, string>).test_case;
    assert.deepEqual(
      [...new Set(lakeQuarantine.map(caseOf))].sort(),
      quarantined.map((c) => c.name).sort(),
      'the quarantine holds exactly the quarantined cases',
    );
    assert.equal(lakeQuarantine.length, counters.quarantined, 'one quarantine record per quarantined message');
    const byCase = new Map(quarantined.map((c) => [c.name, c]));
    for (const q of lakeQuarantine) {
      const c = byCase.get(caseOf(q)!)!;
      assert.ok(Buffer.from(q.data_base64, 'base64').equals(c.message.data), `${c.name}: the data is kept byte for byte`);
      assert.deepStrictEqual(JSON.parse(q.attributes), c.message.attributes, `${c.name}: the attributes are kept string for string`);
      const reason = q.reasons.find((r) => r.code === c.expect.code && (c.expect.path === undefined || r.path === c.expect.path));
      assert.ok(
        reason,
        `${c.name}: expected reason ${c.expect.code}${c.expect.path ? ` at ${c.expect.path}` : ''}, found ${JSON.stringify(q.reasons).slice(0, 300)}`,
      );
      assert.match(reason.message, /^expected /, `${c.name}: the reason says what was expected`);
      // A reason quotes at most a short, escaped excerpt of the hostile value.
      assert.ok(reason.message.length < 400, `${c.name}: reason message of ${reason.message.length} characters`);
      // eslint-disable-next-line no-control-regex -- the assertion is that no raw control character gets through
      assert.ok(!/[\u0000-\u001f\u202e\u2028]/.test(reason.message), `${c.name}: the reason has no raw control characters`);
    }
  });

  it('the loader and the models keep every stored value string for string, and touch nothing else', async () => {
    assert.ok(lakeRaw.length > 0, 'the ingestion test ran first');
    const hours = [...new Set(lakeRaw.map((r) => hourStartOf(new Date(r.publish_time)).getTime()))].sort();
    let loaded = 0;
    for (const start of hours) {
      const interval = { start: new Date(start).toISOString(), end: new Date(start + 3_600_000).toISOString() };
      loaded += (await warehouse.loadRawEvents({ interval })).rows;
      await warehouse.runSqlModel({ model: 'stg_events', interval });
      await warehouse.runSqlModel({ model: 'fct_orders', interval });
    }
    assert.equal(loaded, lakeRaw.length, 'the load job took every lake record (no bad records)');

    const { projectId } = h.config.gcp;
    const { raw, staging, marts } = h.config.warehouse;
    const rawRows = await query<{ event_id: string; customer_id: string; type: string; properties: string; extra: string | null }>(
      `SELECT event_id, customer_id, type, properties, extra FROM ${qualifiedTable(projectId, raw, 'events')}`,
    );
    const stgRows = await query<{ event_id: string; customer_id: string; type: string; properties: string; ts: { value: string } }>(
      `SELECT event_id, customer_id, type, properties, ts FROM ${qualifiedTable(projectId, staging, 'events')}`,
    );
    const orders = await query<{ order_id: string; customer_id: string; event_id: string }>(
      `SELECT order_id, customer_id, event_id FROM ${qualifiedTable(projectId, marts, 'fct_orders')}`,
    );
    assert.equal(rawRows.length, lakeRaw.length, 'raw.events holds exactly the lake records');
    assert.equal(stgRows.length, stored.length, 'staging.events holds exactly the stored cases');
    const lakeById = new Map(lakeRaw.map((r) => [r.event_id, r]));
    const rawById = new Map(rawRows.map((r) => [r.event_id, r]));
    const stgById = new Map(stgRows.map((r) => [r.event_id, r]));
    for (const c of stored) {
      const lake = lakeById.get(c.eventId.toLowerCase())!;
      for (const [where, row] of [
        ['raw.events', rawById.get(lake.event_id)],
        ['staging.events', stgById.get(lake.event_id)],
      ] as const) {
        assert.ok(row, `${c.name}: in ${where}`);
        assert.equal(row.customer_id, lake.customer_id, `${c.name}: ${where}.customer_id`);
        assert.equal(row.type, lake.type, `${c.name}: ${where}.type`);
        assert.ok(row.properties === lake.properties, `${c.name}: ${where}.properties differs from the lake object`);
      }
      assert.equal(rawById.get(lake.event_id)!.extra, lake.extra, `${c.name}: raw.events.extra`);
      assert.equal(new Date(stgById.get(lake.event_id)!.ts.value).toISOString(), lake.ts, `${c.name}: staging ts`);
    }
    const purchases = stored.filter((c) => c.body.type === 'purchase');
    assert.equal(orders.length, purchases.length, 'one fct_orders row per purchase');
    const orderByEvent = new Map(orders.map((o) => [o.event_id, o]));
    for (const c of purchases) {
      const o = orderByEvent.get(c.eventId.toLowerCase());
      // A STRING holds UTF-8 only: JSON_VALUE turns a lone surrogate (kept as an escape in properties) into U+FFFD.
      assert.equal(o?.order_id, wellFormed((c.body.properties as { order_id: string }).order_id), `${c.name}: fct_orders.order_id`);
    }

    // Nothing else changed: the sentinels keep their rows, no table appeared or vanished.
    const counts = await query<{ ds: string; n: number }>(
      Object.keys(sentinelCounts)
        .map((ds, i) => `SELECT ${i} AS ds, COUNT(*) AS n FROM ${qualifiedTable(projectId, ds, 'sentinel')}`)
        .join(' UNION ALL '),
    );
    assert.deepEqual(
      Object.fromEntries(counts.map((r) => [Object.keys(sentinelCounts)[Number(r.ds)], Number(r.n)])),
      sentinelCounts,
      'the sentinel tables keep their rows',
    );
    assert.deepEqual(await tablesOf(raw), ['events', 'sentinel']);
    assert.deepEqual(await tablesOf(staging), ['events', 'sentinel']);
    assert.deepEqual(await tablesOf(marts), ['fct_orders', 'sentinel']);
  });

  it('the real-time path: hostile customer ids start no workflow and write no profile; valid odd ids do', async () => {
    const expected = [...triggerCustomers].sort();
    const deadline = Date.now() + 30_000;
    let ids = await profileIds();
    while (ids.length < expected.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      ids = await profileIds();
    }
    assert.deepEqual(ids, expected, 'profiles exist for exactly the valid trigger customers');
    // Every event of the buyer (hostile order ids, cities, genders) is applied: none wedges the workflow.
    const buyerEvents = stored.filter((c) => c.body.customer_id === BUYER).length;
    const handle = h.client.workflow.getHandle(reclassifyWorkflowId(BUYER));
    let totals = (await handle.query(reclassifyStateQuery)).totals;
    for (const until = Date.now() + 45_000; totals.events + totals.duplicates < buyerEvents && Date.now() < until;) {
      await new Promise((r) => setTimeout(r, 500));
      totals = (await handle.query(reclassifyStateQuery)).totals;
    }
    assert.equal(totals.events, buyerEvents, `the buyer's workflow applied every event: ${JSON.stringify(totals)}`);
    assert.equal(totals.skippedSteps, 0, 'no step was skipped');
    const buyer = (await h.worker.clients.firestore.collection(h.config.firestore.profiles).doc(BUYER).get()).data() as {
      rfm: { frequency: number };
      demographics: { city?: string };
    };
    assert.equal(buyer.rfm.frequency, stored.filter((c) => c.body.customer_id === BUYER && c.body.type === 'purchase').length);
    assert.equal(typeof buyer.demographics.city, 'string', 'a hostile city reached the profile');
    const hostileTriggers = quarantined.filter((c) => c.name.startsWith('customer_id#')).length;
    assert.ok(
      listener.stats.invalid >= hostileTriggers,
      `listener counted ${listener.stats.invalid} invalid messages, expected >= ${hostileTriggers}`,
    );
    assert.equal(listener.stats.failed, 0);
    // Visibility lags a little behind the workflow starts.
    const want = expected.map((c) => reclassifyWorkflowId(c)).sort();
    let workflows: string[];
    for (const until = Date.now() + 10_000; ;) {
      const seen = new Set<string>();
      for await (const wf of h.client.workflow.list({
        query: `TaskQueue = '${h.config.temporal.taskQueue}' AND WorkflowType = '${RECLASSIFY_WORKFLOW}'`,
      })) {
        seen.add(wf.workflowId);
      }
      workflows = [...seen].sort();
      if (workflows.length >= want.length || Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.deepEqual(workflows, want, 'reclassify workflows exist for exactly the valid trigger customers');
  });

  it('the profile API answers hostile paths with 4xx and changes nothing in Firestore', async () => {
    const before = await profileIds();
    const valid = [...triggerCustomers].find((c) => c.startsWith('o.brien@'))!;
    const ok = await fetch(`${apiBase}/v1/customers/${encodeURIComponent(valid)}/profile`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(ok.status, 200, 'a valid odd id is served');
    const paths = [
      ...STRINGS.map((s) => `/v1/customers/${uri(s)}/profile`),
      `/v1/customers/${encodeURIComponent(valid)}%00/profile`,
      `/v1/customers/${encodeURIComponent(valid)}%0d%0aSet-Cookie:%20x=1/profile`,
      '/v1/customers/%2e%2e/profile',
      `/v1/customers/..%2f${encodeURIComponent(valid)}/profile`,
      '/v1/customers/%E0%A4%A/profile',
      `/v1/customers/${'a'.repeat(129)}/profile`,
      '/v1/customers/__name__/profile',
    ];
    for (const path of paths) {
      const res = await fetch(`${apiBase}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const text = await res.text();
      assert.ok(res.status >= 400 && res.status < 500, `${path.slice(0, 60)} -> ${res.status}`);
      assert.ok(!text.includes('segment_id'), `${path.slice(0, 60)}: no profile in the answer`);
      assert.equal(res.headers.get('set-cookie'), null);
    }
    assert.deepEqual(await profileIds(), before);
  });
});
