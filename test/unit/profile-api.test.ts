import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { buildProfileApi, type ProfileApiOptions, type ProfileResponse } from '../../api/server.js';
import type { ProfileStore } from '../../api/cache.js';
import { createLogger } from '../../core/logger.js';
import type { Profile } from '../../core/profile.js';

const TOKEN = 'unit-test-token-0123456789';
const OTHER_TOKEN = 'second-token-abcdefghijkl';
const auth = { authorization: `Bearer ${TOKEN}` };

function profile(id: string, overrides: Partial<Profile> = {}): Profile {
  return {
    customer_id: id,
    segment_id: 2,
    segment_label: 'Loyal big spenders',
    model_version: 'm-2026-11-25',
    features: { monetary_90d: 812.5, orders_90d: 7, email_open_rate: null },
    rfm: { recency_days: 3, frequency: 7, monetary: 812.5, r_score: 5, f_score: 4, m_score: 5 },
    demographics: { age: 41, country: 'DE', income_band: 'high' },
    updated_at: '2026-11-25T02:00:00.000Z',
    ...overrides,
  };
}

type Mode = 'ok' | 'error' | 'hang' | { delayMs: number };

/** A store whose behaviour the test switches; it records every id it was asked for. */
class FakeStore implements ProfileStore {
  mode: Mode = 'ok';
  readonly data = new Map<string, Profile>();
  readonly calls: string[] = [];
  async getProfile(id: string): Promise<Profile | null> {
    this.calls.push(id);
    const mode = this.mode;
    const value = this.data.get(id) ?? null;
    if (mode === 'error') throw new Error('14 UNAVAILABLE: connect ECONNREFUSED');
    if (mode === 'hang') return new Promise<never>(() => {});
    if (typeof mode === 'object') await new Promise((r) => setTimeout(r, mode.delayMs));
    return value;
  }
  async ping(): Promise<void> {
    if (this.mode === 'error') throw new Error('14 UNAVAILABLE');
    if (this.mode === 'hang') return new Promise<never>(() => {});
  }
}

const logLines: string[] = [];
const logger = createLogger({ level: 'trace', name: 'profile-api-test' }, { write: (line: string) => void logLines.push(line) });
const apps: ReturnType<typeof buildProfileApi>[] = [];

function api(store: ProfileStore, options: Partial<ProfileApiOptions> = {}) {
  const app = buildProfileApi({
    store,
    tokens: [TOKEN, OTHER_TOKEN],
    logger,
    rateLimit: false,
    ...options,
    // freshForMs 0: these tests are about the store path; the fresh window has its own test.
    cache: { latencyBudgetMs: 30, uncachedTimeoutMs: 150, freshForMs: 0, ...options.cache },
  });
  apps.push(app);
  return app;
}

after(async () => {
  await Promise.all(apps.map((a) => a.close()));
});

async function get(app: ReturnType<typeof buildProfileApi>, url: string, headers: Record<string, string> = auth) {
  const res = await app.inject({ method: 'GET', url, headers });
  return {
    status: res.statusCode,
    headers: res.headers,
    body: res.body.length > 0 ? (JSON.parse(res.body) as Record<string, unknown>) : {},
  };
}

describe('authentication', () => {
  const store = new FakeStore();
  store.data.set('c-1', profile('c-1'));
  const app = api(store);

  it('answers 401 without a token, with a wrong one, or with another scheme', async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong-token-0123456789' },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` },
      { authorization: TOKEN },
      { authorization: 'Bearer ' },
    ];
    for (const headers of attempts) {
      const res = await get(app, '/v1/customers/c-1/profile', headers);
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.match(String(res.headers['www-authenticate']), /^Bearer realm="segflow-profiles"/);
      assert.equal(res.body.segment_id, undefined);
    }
  });

  it('accepts every configured token, case-insensitively in the scheme', async () => {
    assert.equal((await get(app, '/v1/customers/c-1/profile', { authorization: `Bearer ${OTHER_TOKEN}` })).status, 200);
    assert.equal((await get(app, '/v1/customers/c-1/profile', { authorization: `bearer ${TOKEN}` })).status, 200);
  });

  it('refuses to start without tokens', () => {
    assert.throws(() => buildProfileApi({ store, tokens: [], logger }), /at least one non-empty bearer token/);
    assert.throws(() => buildProfileApi({ store, tokens: [TOKEN, ''], logger }), /non-empty bearer token/);
  });

  it('checks the token before looking at the id, and never consults the store unauthenticated', async () => {
    const before = store.calls.length;
    assert.equal((await get(app, '/v1/customers/..%2F..%2Fetc%2Fpasswd/profile', {})).status, 401);
    assert.equal((await get(app, '/v1/customers/c-1/profile', {})).status, 401);
    assert.equal(store.calls.length, before);
  });
});

describe('GET /v1/customers/:id/profile', () => {
  const store = new FakeStore();
  store.data.set('c-1', profile('c-1'));
  store.data.set('alice@example.com', profile('alice@example.com', { segment_id: 0, segment_label: 'New' }));
  const app = api(store);

  it('returns segment, model version, features, RFM scores and updated time, fresh', async () => {
    const res = await get(app, '/v1/customers/c-1/profile');
    assert.equal(res.status, 200);
    const p = profile('c-1');
    const expected: ProfileResponse = {
      customer_id: 'c-1',
      segment_id: p.segment_id,
      segment_label: p.segment_label,
      parent_segment: null,
      model_version: p.model_version,
      features: p.features,
      rfm: p.rfm,
      updated_at: p.updated_at,
      stale: false,
    };
    assert.deepEqual(res.body, expected);
    // With nested segments the parent comes along.
    store.data.set('c-2', profile('c-2', { parent_segment: { id: 1, label: 'engaged' } }));
    const nested = await get(app, '/v1/customers/c-2/profile');
    assert.deepEqual(nested.body.parent_segment, { id: 1, label: 'engaged' });
    assert.equal(res.headers['cache-control'], 'no-store');
    // Personal data stays server-side.
    assert.equal(res.body.demographics, undefined);
  });

  it('accepts every character the shared id rule allows', async () => {
    const res = await get(app, '/v1/customers/alice@example.com/profile');
    assert.equal(res.status, 200);
    assert.equal(res.body.segment_label, 'New');
  });

  it('answers 404 for an unknown customer', async () => {
    const res = await get(app, '/v1/customers/nobody/profile');
    assert.equal(res.status, 404);
    assert.match(String(res.body.message), /no profile for customer nobody/);
  });

  it('answers 4xx to hostile ids and never passes them to the store', async () => {
    const hostile = [
      '..%2F..%2Fetc%2Fpasswd',
      '..',
      '.',
      '%2E%2E',
      '__name__',
      "x'%20OR%20'1'%3D'1",
      '1%3B%20DROP%20TABLE%20customers%3B--',
      'a%00b',
      'a%20b',
      '%C3%A9t%C3%A9',
      '%FF',
      '%C0%AE%C0%AE',
      '%E0%A4%A',
      '%',
      'x'.repeat(129),
      'x'.repeat(10_240),
      '%2541'.repeat(2_000),
      '%3Cscript%3Ealert(1)%3C%2Fscript%3E',
    ];
    const before = store.calls.length;
    for (const id of hostile) {
      const res = await get(app, `/v1/customers/${id}/profile`);
      assert.ok(res.status >= 400 && res.status < 500, `${id.slice(0, 40)} -> ${res.status}`);
      assert.ok(!String(res.body.message).includes('script'), 'the input is reflected back');
      // Dot segments ('.', '..', '%2E%2E') are resolved by URL parsing before routing: no route matches.
      if (['.', '..', '%2E%2E'].includes(id)) continue;
      assert.equal(res.status, 400, id.slice(0, 40));
      assert.match(String(res.body.message), /customer id: expected|request URL is not valid/);
    }
    assert.equal(store.calls.length, before, 'the store was consulted for a hostile id');
  });
});

describe('cached fallback', () => {
  it('serves the last good profile as stale when the store errors, and recovers by itself', async () => {
    const store = new FakeStore();
    store.data.set('c-1', profile('c-1'));
    const app = api(store);
    assert.equal((await get(app, '/v1/customers/c-1/profile')).body.stale, false);

    store.mode = 'error';
    const down = await get(app, '/v1/customers/c-1/profile');
    assert.equal(down.status, 200);
    assert.equal(down.body.stale, true);
    assert.equal(down.body.segment_label, 'Loyal big spenders');

    store.mode = 'ok';
    store.data.set('c-1', profile('c-1', { segment_id: 4, segment_label: 'Lapsing', updated_at: '2026-11-26T00:00:00.000Z' }));
    const back = await get(app, '/v1/customers/c-1/profile');
    assert.deepEqual([back.status, back.body.stale, back.body.segment_label], [200, false, 'Lapsing']);
  });

  it('serves stale within the latency budget when the store hangs', async () => {
    const store = new FakeStore();
    store.data.set('c-1', profile('c-1'));
    const app = api(store, { cache: { latencyBudgetMs: 40, uncachedTimeoutMs: 2_000 } });
    await get(app, '/v1/customers/c-1/profile');
    store.mode = 'hang';
    const t0 = performance.now();
    const res = await get(app, '/v1/customers/c-1/profile');
    const elapsed = performance.now() - t0;
    assert.deepEqual([res.status, res.body.stale], [200, true]);
    assert.ok(elapsed >= 35 && elapsed < 1_000, `answered after ${elapsed.toFixed(0)} ms`);
  });

  it('answers 503 with a clear message when nothing is cached', async () => {
    const store = new FakeStore();
    store.data.set('c-1', profile('c-1'));
    const app = api(store);
    store.mode = 'error';
    const failed = await get(app, '/v1/customers/c-1/profile');
    assert.equal(failed.status, 503);
    assert.match(String(failed.body.message), /profile store failed .*UNAVAILABLE.*no cached profile exists for this customer/);
    assert.equal(failed.headers['retry-after'], '5');

    store.mode = 'hang';
    const t0 = performance.now();
    const hung = await get(app, '/v1/customers/c-1/profile');
    assert.equal(hung.status, 503);
    assert.match(String(hung.body.message), /did not answer within 150 ms/);
    assert.ok(performance.now() - t0 >= 140);
  });

  it('a store read that finishes after its request gave up still refreshes the cache', async () => {
    const store = new FakeStore();
    store.data.set('c-1', profile('c-1'));
    const app = api(store);
    await get(app, '/v1/customers/c-1/profile');
    store.data.set('c-1', profile('c-1', { segment_label: 'Newer', updated_at: '2026-11-26T00:00:00.000Z' }));
    store.mode = { delayMs: 120 };
    const slow = await get(app, '/v1/customers/c-1/profile');
    assert.deepEqual([slow.body.stale, slow.body.segment_label], [true, 'Loyal big spenders']);
    await new Promise((r) => setTimeout(r, 150));
    store.mode = 'error';
    const later = await get(app, '/v1/customers/c-1/profile');
    assert.deepEqual([later.body.stale, later.body.segment_label], [true, 'Newer']);
  });

  it('forgets a customer the store no longer has (erasure is not undone by the cache)', async () => {
    const store = new FakeStore();
    store.data.set('c-1', profile('c-1'));
    const app = api(store);
    await get(app, '/v1/customers/c-1/profile');
    store.data.delete('c-1');
    assert.equal((await get(app, '/v1/customers/c-1/profile')).status, 404);
    store.mode = 'error';
    assert.equal((await get(app, '/v1/customers/c-1/profile')).status, 503);
  });

  it('asks a hanging store once per customer, however many requests wait', async () => {
    const store = new FakeStore();
    store.data.set('c-1', profile('c-1'));
    const app = api(store);
    await get(app, '/v1/customers/c-1/profile');
    store.mode = 'hang';
    const before = store.calls.length;
    const results = await Promise.all(Array.from({ length: 20 }, () => get(app, '/v1/customers/c-1/profile')));
    assert.ok(results.every((r) => r.status === 200 && r.body.stale === true));
    assert.equal(store.calls.length - before, 1);
  });

  it('recovers from a store that hung: a read stuck past the wait is not joined forever', async () => {
    const store = new FakeStore();
    store.data.set('c-1', profile('c-1'));
    const app = api(store);
    await get(app, '/v1/customers/c-1/profile');
    store.mode = 'hang';
    assert.equal((await get(app, '/v1/customers/c-1/profile')).body.stale, true);
    store.mode = 'ok';
    store.data.set('c-1', profile('c-1', { segment_label: 'After the outage', updated_at: '2026-11-26T00:00:00.000Z' }));
    await new Promise((r) => setTimeout(r, 160)); // past uncachedTimeoutMs
    const res = await get(app, '/v1/customers/c-1/profile');
    assert.deepEqual([res.body.stale, res.body.segment_label], [false, 'After the outage']);
  });

  it('a hung read that finally answers does not overwrite what a later read cached', async () => {
    const pending: Array<(p: Profile) => void> = [];
    let mode: 'defer' | 'ok' | 'error' = 'ok';
    let current = profile('c-1');
    const store: ProfileStore = {
      getProfile: async () => {
        if (mode === 'error') throw new Error('down');
        if (mode === 'defer') return new Promise<Profile>((resolve) => pending.push(resolve));
        return current;
      },
    };
    const app = api(store);
    await get(app, '/v1/customers/c-1/profile');
    mode = 'defer';
    assert.equal((await get(app, '/v1/customers/c-1/profile')).body.stale, true);
    await new Promise((r) => setTimeout(r, 160));
    mode = 'ok';
    current = profile('c-1', { segment_label: 'Newest', updated_at: '2026-11-26T00:00:00.000Z' });
    assert.equal((await get(app, '/v1/customers/c-1/profile')).body.segment_label, 'Newest');
    pending[0]!(profile('c-1', { segment_label: 'Read long ago' }));
    await new Promise((r) => setTimeout(r, 10));
    mode = 'error';
    const res = await get(app, '/v1/customers/c-1/profile');
    assert.deepEqual([res.body.stale, res.body.segment_label], [true, 'Newest']);
  });

  it('serves a just-read profile without waiting for the store, and revalidates it in the background', async () => {
    const store = new FakeStore();
    store.data.set('c-1', profile('c-1'));
    const app = api(store, { cache: { freshForMs: 60_000, refreshAfterMs: 0 } });
    const first = await get(app, '/v1/customers/c-1/profile');
    assert.equal(first.status, 200);
    store.mode = 'hang';
    const t0 = performance.now();
    const res = await get(app, '/v1/customers/c-1/profile');
    assert.deepEqual([res.status, res.body.stale], [200, false]);
    assert.ok(performance.now() - t0 < 25, 'answered from the fresh copy, not after the latency budget');
    store.mode = 'ok';
    store.data.set('c-1', profile('c-1', { segment_id: 4, segment_label: 'Lapsing', updated_at: '2026-11-26T00:00:00.000Z' }));
    // The hung background read is joined for up to uncachedTimeoutMs (150 ms), then replaced.
    await new Promise((r) => setTimeout(r, 200));
    await get(app, '/v1/customers/c-1/profile'); // triggers the background refresh
    await new Promise((r) => setTimeout(r, 50));
    const after = await get(app, '/v1/customers/c-1/profile');
    assert.equal(after.body.segment_label, 'Lapsing');
  });

  it('bounds the cache: the least recently used customer is evicted', async () => {
    const store = new FakeStore();
    for (const id of ['a', 'b', 'c']) store.data.set(id, profile(id));
    const app = api(store, { cache: { maxEntries: 2 } });
    for (const id of ['a', 'b', 'c']) await get(app, `/v1/customers/${id}/profile`);
    store.mode = 'error';
    assert.equal((await get(app, '/v1/customers/a/profile')).status, 503);
    assert.equal((await get(app, '/v1/customers/c/profile')).body.stale, true);
  });
});

describe('GET /healthz', () => {
  it('needs no token and reports whether the store answers, staying 200 while cached profiles are served', async () => {
    const store = new FakeStore();
    const app = api(store, { healthTimeoutMs: 50 });
    const up = await get(app, '/healthz', {});
    assert.equal(up.status, 200);
    assert.deepEqual([up.body.status, up.body.store], ['ok', 'reachable']);

    // A fresh API, so no shared probe result: each probe is reused for a second.
    const downStore = new FakeStore();
    downStore.mode = 'hang';
    const down = await get(api(downStore, { healthTimeoutMs: 50 }), '/healthz', {});
    assert.equal(down.status, 200);
    assert.deepEqual([down.body.status, down.body.store], ['degraded', 'unreachable']);
    assert.equal(down.body.store_error, undefined, 'a public route must not expose internal errors');
    assert.ok(logLines.some((l) => l.includes('health probe: profile store unreachable') && l.includes('no answer within 50 ms')));
  });
});

describe('limits', () => {
  it('rate-limits per client, unauthenticated attempts included', async () => {
    const store = new FakeStore();
    store.data.set('c-1', profile('c-1'));
    const app = api(store, { rateLimit: { max: 3, timeWindowMs: 60_000 } });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await get(app, '/v1/customers/c-1/profile', { authorization: 'Bearer guess-guess-guess' })).status);
    statuses.push((await get(app, '/v1/customers/c-1/profile')).status);
    assert.deepEqual(statuses, [401, 401, 401, 429]);
    // Another client has its own budget.
    const other = await app.inject({ method: 'GET', url: '/v1/customers/c-1/profile', headers: auth, remoteAddress: '10.0.0.2' });
    assert.equal(other.statusCode, 200);
  });

  it('has a small body limit: a body is refused, not buffered', async () => {
    const app = api(new FakeStore(), { bodyLimitBytes: 1_024 });
    app.post('/v1/echo-for-test', async () => ({ ok: true }));
    const res = await app.inject({ method: 'POST', url: '/v1/echo-for-test', payload: { x: 'y'.repeat(4_096) } });
    assert.equal(res.statusCode, 413);
  });
});

describe('logging', () => {
  it('never writes a bearer token to the log, even at trace level', async () => {
    const store = new FakeStore();
    store.data.set('c-1', profile('c-1'));
    const app = api(store);
    await get(app, '/v1/customers/c-1/profile');
    await get(app, '/v1/customers/c-1/profile', { authorization: 'Bearer wrong-token-zzzzzzzz' });
    store.mode = 'error';
    await get(app, '/v1/customers/nobody/profile');
    const text = logLines.join('');
    assert.ok(text.includes('c-1'), 'expected request lines in the log');
    assert.ok(!text.includes(TOKEN) && !text.includes(OTHER_TOKEN) && !text.includes('wrong-token-zzzzzzzz'));
  });
});
