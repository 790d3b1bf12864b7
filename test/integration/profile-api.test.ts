/**
 * The profile API over real HTTP, reading the real Firestore emulator. The
 * outage is simulated without touching the shared emulator: the API's store is
 * switched to one whose calls hang or fail after the cache was primed for real.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { ProfileStore } from '../../api/cache.js';
import { createFirestoreProfileStore } from '../../api/firestore-store.js';
import { buildProfileApi } from '../../api/server.js';
import { closeGcpClients, createGcpClients, type GcpClients } from '../../stores/clients.js';
import { createProfileStore, type OnlineProfileStore } from '../../stores/profiles.js';
import { loadConfig, type Config } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import type { Profile } from '../../core/profile.js';

const TOKEN = 'integration-token-0123456789';

let config: Config;
let clients: GcpClients;
let profiles: OnlineProfileStore;
let realStore: ProfileStore;
let outage: 'none' | 'hang' | 'error' = 'none';
/** Ids of every batched read the API made through the store. */
const batchedReads: string[][] = [];
/** Ids of every single read the fresh-window API made. */
const singleReads: string[] = [];
let app: ReturnType<typeof buildProfileApi>;
let base: string;

before(async () => {
  config = loadConfig({
    ...process.env,
    SEGFLOW_FIRESTORE_PROFILES: `test_api_profiles_${randomUUID().slice(0, 8)}`,
    SEGFLOW_API_TOKENS: TOKEN,
    LOG_LEVEL: 'warn',
  });
  clients = createGcpClients(config);
  const logger = createLogger({ level: config.log.level, name: 'test-profile-api' });
  profiles = createProfileStore({ firestore: clients.firestore, config, logger });
  realStore = createFirestoreProfileStore({ firestore: clients.firestore, config, logger });
  // The real Firestore store, or an outage in its place.
  const store: ProfileStore = {
    getProfile: (id) =>
      outage === 'hang'
        ? new Promise<never>(() => {})
        : outage === 'error'
          ? Promise.reject(new Error('14 UNAVAILABLE: connect ECONNREFUSED'))
          : realStore.getProfile(id),
    getProfiles: (ids) => {
      batchedReads.push([...ids]);
      return outage === 'hang'
        ? new Promise<never>(() => {})
        : outage === 'error'
          ? Promise.reject(new Error('14 UNAVAILABLE: connect ECONNREFUSED'))
          : realStore.getProfiles!(ids);
    },
    ping: () =>
      outage === 'hang'
        ? new Promise<never>(() => {})
        : outage === 'error'
          ? Promise.reject(new Error('14 UNAVAILABLE'))
          : realStore.ping!(),
  };
  app = buildProfileApi({
    store,
    tokens: config.api.tokens,
    logger,
    // The emulator answers in a few ms; a generous budget keeps the fresh path off the stale one on a busy machine.
    cache: { latencyBudgetMs: 250, uncachedTimeoutMs: 500, freshForMs: 0 },
    healthTimeoutMs: 300,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

after(async () => {
  await app?.close();
  await clients.firestore.recursiveDelete(clients.firestore.collection(config.firestore.profiles));
  await closeGcpClients(clients);
});

function profile(id: string, overrides: Partial<Profile> = {}): Profile {
  return {
    customer_id: id,
    segment_id: 3,
    segment_label: 'VIP',
    model_version: 'm-2026-11-25',
    features: { monetary_90d: 1520.75, orders_90d: 11, email_open_rate: null },
    rfm: { recency_days: 1, frequency: 11, monetary: 1520.75, r_score: 5, f_score: 5, m_score: 5 },
    demographics: { age: 38, country: 'US', city: 'Austin', income_band: 'upper_middle' },
    updated_at: '2026-11-25T02:00:00.000Z',
    source_event_time: '2026-11-25T00:00:00.000Z',
    ...overrides,
  };
}

async function get(path: string, token: string | null = TOKEN) {
  const res = await fetch(`${base}${path}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

async function collectionIds(): Promise<string[]> {
  const refs = await clients.firestore.collection(config.firestore.profiles).listDocuments();
  return refs.map((r) => r.id).sort();
}

describe('profile API on Firestore', () => {
  it('serves a profile written to Firestore, fresh', async () => {
    await profiles.writeProfile(profile('api-1'));
    const res = await get('/v1/customers/api-1/profile');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {
      customer_id: 'api-1',
      segment_id: 3,
      segment_label: 'VIP',
      // Written without a parent segment (as by a model without a hierarchy): served as null.
      parent_segment: null,
      model_version: 'm-2026-11-25',
      features: { monetary_90d: 1520.75, orders_90d: 11, email_open_rate: null },
      rfm: { recency_days: 1, frequency: 11, monetary: 1520.75, r_score: 5, f_score: 5, m_score: 5 },
      updated_at: '2026-11-25T02:00:00.000Z',
      stale: false,
    });
  });

  it('serves the newer profile after an older one was refused', async () => {
    await profiles.writeProfile(profile('api-2', { segment_id: 4, segment_label: 'Lapsing', updated_at: '2026-11-25T12:00:00Z' }));
    const older = await profiles.writeProfile(profile('api-2', { updated_at: '2026-11-25T03:00:00Z' }));
    assert.equal(older.written, false);
    const res = await get('/v1/customers/api-2/profile');
    assert.deepEqual([res.body.segment_label, res.body.updated_at], ['Lapsing', '2026-11-25T12:00:00.000Z']);
  });

  it('401 without or with a wrong token; 404 for an unknown customer', async () => {
    assert.equal((await get('/v1/customers/api-1/profile', null)).status, 401);
    assert.equal((await get('/v1/customers/api-1/profile', 'wrong-token-0123456789')).status, 401);
    assert.equal((await get('/v1/customers/nobody/profile')).status, 404);
  });

  it('hostile ids get 4xx and change nothing in Firestore', async () => {
    const before = await collectionIds();
    for (const id of [
      '..%2F..%2Fapi-1',
      '..%2Fother_collection%2Fdoc',
      "api-1'%20OR%20'1'%3D'1",
      '%FF%FE',
      'a%2Fb',
      '__name__',
      'x'.repeat(10_240),
    ]) {
      const res = await get(`/v1/customers/${id}/profile`);
      assert.ok(res.status >= 400 && res.status < 500, `${id.slice(0, 30)} -> ${res.status}`);
      assert.equal(res.body.segment_id, undefined);
    }
    assert.deepEqual(await collectionIds(), before);
  });

  it('healthz reports Firestore reachable without a token', async () => {
    const res = await get('/healthz', null);
    assert.deepEqual([res.status, res.body.status, res.body.store], [200, 'ok', 'reachable']);
  });

  it('during an outage: stale for cached customers, 503 for the rest, then recovers with no restart', async () => {
    await profiles.writeProfile(profile('out-cached'));
    await profiles.writeProfile(profile('out-uncached', { segment_label: 'Never read' }));
    assert.equal((await get('/v1/customers/out-cached/profile')).body.stale, false); // primes the cache

    for (const mode of ['hang', 'error'] as const) {
      outage = mode;
      const cached = await get('/v1/customers/out-cached/profile');
      assert.equal(cached.status, 200, `${mode}: cached customer`);
      assert.deepEqual([cached.body.stale, cached.body.segment_label], [true, 'VIP']);
      const uncached = await get('/v1/customers/out-uncached/profile');
      assert.equal(uncached.status, 503, `${mode}: uncached customer`);
      assert.match(String(uncached.body.message), /no cached profile exists for this customer/);
    }
    await new Promise((r) => setTimeout(r, 1_100)); // the health probe result is shared for a second
    const health = await get('/healthz', null);
    assert.deepEqual([health.status, health.body.status, health.body.store], [200, 'degraded', 'unreachable']);

    // Firestore moves on while the API cannot see it.
    outage = 'none';
    await profiles.writeProfile(profile('out-cached', { segment_id: 1, segment_label: 'Occasional', updated_at: '2026-11-26T00:00:00Z' }));
    const back = await get('/v1/customers/out-cached/profile');
    assert.deepEqual([back.status, back.body.stale, back.body.segment_label], [200, false, 'Occasional']);
    const first = await get('/v1/customers/out-uncached/profile');
    assert.deepEqual([first.status, first.body.stale, first.body.segment_label], [200, false, 'Never read']);
    await new Promise((r) => setTimeout(r, 1_100));
    assert.equal((await get('/healthz', null)).body.store, 'reachable');
  });
});

describe('profile API on Firestore, fresh window and batched revalidation on (the defaults)', () => {
  let fresh: ReturnType<typeof buildProfileApi>;
  let freshBase: string;
  before(async () => {
    fresh = buildProfileApi({
      store: {
        getProfile: (id) => {
          singleReads.push(id);
          return outage === 'error' ? Promise.reject(new Error('14 UNAVAILABLE: connect ECONNREFUSED')) : realStore.getProfile(id);
        },
        getProfiles: (ids) => {
          batchedReads.push([...ids]);
          return outage === 'error' ? Promise.reject(new Error('14 UNAVAILABLE: connect ECONNREFUSED')) : realStore.getProfiles!(ids);
        },
      },
      tokens: config.api.tokens,
      logger: createLogger({ level: 'warn', name: 'test-profile-api-fresh' }),
      rateLimit: false,
      // The default fresh window and refresh; a generous budget for a busy machine.
      cache: { latencyBudgetMs: 250, uncachedTimeoutMs: 1_000 },
    });
    await fresh.listen({ host: '127.0.0.1', port: 0 });
    freshBase = `http://127.0.0.1:${(fresh.server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await fresh?.close();
  });
  const getFresh = async (id: string) => {
    const res = await fetch(`${freshBase}/v1/customers/${id}/profile`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('readProfiles reads many customers in one call: profiles, null for the unknown, an error for an unreadable document', async () => {
    await profiles.writeProfile(profile('rp-1'));
    await profiles.writeProfile(profile('rp-2', { segment_label: 'Second' }));
    await clients.firestore
      .collection(config.firestore.profiles)
      .doc('rp-bad')
      .set({ ...profile('rp-bad'), segment_id: 'three' });
    const answers = await realStore.getProfiles!(['rp-2', 'nobody-here', 'rp-bad', 'rp-1', '../x']);
    assert.equal(answers.length, 5);
    const [two, nobody, bad, one, hostile] = answers;
    assert.deepEqual(two, { profile: await profiles.readProfile('rp-2') });
    assert.deepEqual(nobody, { profile: null });
    assert.ok(bad !== undefined && 'error' in bad && /segment_id/.test(bad.error), JSON.stringify(bad));
    assert.equal(one !== undefined && 'profile' in one && one.profile?.segment_label, 'VIP');
    assert.ok(hostile !== undefined && 'error' in hostile && /customer id: expected/.test(hostile.error), JSON.stringify(hostile));
  });

  it('a segment change is visible within a second while the customers are asked for continuously, through batched reads', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `fw-${i}`);
    await Promise.all(ids.map((id) => profiles.writeProfile(profile(id, { segment_label: 'Before' }))));
    for (const id of ids) assert.equal((await getFresh(id)).body.segment_label, 'Before');
    const batchesBefore = batchedReads.length;
    const singlesBefore = singleReads.length;
    let requests = 0;
    const stop = Date.now() + 3_000;
    let changedAt: number | undefined;
    const seenAfter = new Map<string, number>();
    while (Date.now() < stop && seenAfter.size < ids.length) {
      if (changedAt === undefined && Date.now() > stop - 2_500) {
        await Promise.all(
          ids.map((id) => profiles.writeProfile(profile(id, { segment_label: 'After', updated_at: '2026-11-26T00:00:00.000Z' }))),
        );
        changedAt = Date.now();
      }
      const answers = await Promise.all(ids.map((id) => getFresh(id)));
      requests += answers.length;
      answers.forEach((a, i) => {
        assert.deepEqual([a.status, a.body.stale], [200, false]);
        if (changedAt !== undefined && a.body.segment_label === 'After' && !seenAfter.has(ids[i]!))
          seenAfter.set(ids[i]!, Date.now() - changedAt);
      });
    }
    assert.equal(seenAfter.size, ids.length, 'every customer showed the change');
    const slowest = Math.max(...seenAfter.values());
    assert.ok(slowest < 1_000, `the change showed after ${slowest} ms`);
    const batches = batchedReads.length - batchesBefore;
    assert.ok(batches > 0, 'revalidated through batched reads');
    const singles = singleReads.length - singlesBefore;
    assert.ok(batches * 5 < requests, `${batches} batched reads for ${requests} requests`);
    // Copies are refreshed by the batches, so they seldom age out into a read of their own.
    assert.ok(singles * 10 < requests, `${singles} single reads for ${requests} requests`);
  });

  it('with Firestore failing, cached customers get stale copies and no errors, then fresh ones again by themselves', async () => {
    await profiles.writeProfile(profile('fw-out'));
    assert.equal((await getFresh('fw-out')).body.stale, false);
    outage = 'error';
    try {
      // The fresh window hides the outage until a batch fails; then every answer is stale.
      const deadline = Date.now() + 2_000;
      let last: { status: number; body: Record<string, unknown> } | undefined;
      while (Date.now() < deadline) {
        last = await getFresh('fw-out');
        assert.equal(last.status, 200);
        if (last.body.stale === true) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual([last?.body.stale, last?.body.segment_label], [true, 'VIP']);
      assert.equal((await getFresh('fw-out')).body.stale, true);
    } finally {
      outage = 'none';
    }
    await profiles.writeProfile(profile('fw-out', { segment_label: 'Recovered', updated_at: '2026-11-26T00:00:00Z' }));
    const back = await getFresh('fw-out');
    assert.deepEqual([back.status, back.body.stale, back.body.segment_label], [200, false, 'Recovered']);
  });
});

/** A raw HTTP request from a chosen loopback address (127.0.0.0/8 all reach the server), so tests can be several clients. */
function send(port: number, opts: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer; from?: string }) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path, headers: opts.headers, localAddress: opts.from },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('profile API resource limits over HTTP', () => {
  let limited: ReturnType<typeof buildProfileApi>;
  let port: number;
  const auth = { authorization: `Bearer ${TOKEN}` };
  before(async () => {
    await profiles.writeProfile(profile('limits-1'));
    limited = buildProfileApi({
      store: realStore,
      tokens: config.api.tokens,
      logger: createLogger({ level: 'warn', name: 'test-profile-api-limits' }),
      rateLimit: { max: 5, timeWindowMs: 60_000 },
      cache: { latencyBudgetMs: 250, uncachedTimeoutMs: 1_000, freshForMs: 0 },
    });
    await limited.listen({ host: '127.0.0.1', port: 0 });
    port = (limited.server.address() as AddressInfo).port;
  });
  after(async () => {
    await limited?.close();
  });

  it('refuses an oversized URL, header or body with a 4xx and keeps serving', async () => {
    // Each from its own address, so the rate limit below is not spent here.
    const longUrl = await send(port, { path: `/v1/customers/${'a'.repeat(64 * 1024)}/profile`, headers: auth, from: '127.0.0.21' });
    assert.equal(longUrl.status, 431, 'a 64 kB URL exceeds the header limit');
    const longId = await send(port, { path: `/v1/customers/${'a'.repeat(8 * 1024)}/profile`, headers: auth, from: '127.0.0.22' });
    assert.equal(longId.status, 400, 'an 8 kB id reaches the validator');
    assert.match(longId.body, /customer id: expected/);
    const bigHeader = await send(port, {
      path: '/v1/customers/limits-1/profile',
      headers: { ...auth, 'x-padding': 'p'.repeat(64 * 1024) },
      from: '127.0.0.23',
    });
    assert.equal(bigHeader.status, 431);
    const bigBody = await send(port, {
      method: 'POST',
      path: '/v1/customers/limits-1/profile',
      headers: { ...auth, 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify({ pad: 'x'.repeat(1024 * 1024) })),
      from: '127.0.0.24',
    });
    assert.equal(bigBody.status, 413, 'a 1 MB body is refused, not buffered');
    const ok = await send(port, { path: '/v1/customers/limits-1/profile', headers: auth, from: '127.0.0.26' });
    assert.equal(ok.status, 200, 'still serving');
  });

  it('rate-limits per client with 429 and Retry-After while another client is still served', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++)
      statuses.push((await send(port, { path: '/v1/customers/limits-1/profile', headers: auth, from: '127.0.0.31' })).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
    const limitedRes = await send(port, { path: '/v1/customers/limits-1/profile', headers: auth, from: '127.0.0.31' });
    assert.equal(limitedRes.status, 429);
    const retryAfter = Number(limitedRes.headers['retry-after']);
    assert.ok(retryAfter > 0 && retryAfter <= 60, `Retry-After ${String(limitedRes.headers['retry-after'])}`);
    assert.equal((JSON.parse(limitedRes.body) as { statusCode: number }).statusCode, 429);
    // Token guessing counts too: the limited client stays limited without a token.
    assert.equal((await send(port, { path: '/v1/customers/limits-1/profile', from: '127.0.0.31' })).status, 429);
    const other = await send(port, { path: '/v1/customers/limits-1/profile', headers: auth, from: '127.0.0.32' });
    assert.equal(other.status, 200, 'another client is served');
    assert.equal((JSON.parse(other.body) as { customer_id: string }).customer_id, 'limits-1');
  });
});
