/**
 * POST /v1/profiles:batchGet follows the single profile route's cache and stale rules: each id
 * gets what GET /v1/customers/:id/profile would answer, with a store that fails on demand.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { ProfileStore } from '../../api/cache.js';
import { buildProfileApi } from '../../api/server.js';
import { createLogger } from '../../core/logger.js';
import type { Profile } from '../../core/profile.js';

const TOKEN = 'unit-batch-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

const profile = (id: string): Profile => ({
  customer_id: id,
  segment_id: 1,
  segment_label: 'mainstream',
  model_version: 'v20261126T000000Z',
  features: { monetary: 120, frequency: 3 },
  rfm: { recency_days: 4, frequency: 3, monetary: 120, r_score: 4, f_score: 3, m_score: 3 },
  demographics: {},
  updated_at: '2026-11-26T02:00:00.000Z',
});

/** A store that answers from a map, or fails while `down`. */
class SwitchableStore implements ProfileStore {
  down = false;
  readonly data = new Map([
    ['c-1', profile('c-1')],
    ['c-2', profile('c-2')],
  ]);
  async getProfile(id: string): Promise<Profile | null> {
    if (this.down) throw new Error('14 UNAVAILABLE: connect ECONNREFUSED');
    return this.data.get(id) ?? null;
  }
}

const store = new SwitchableStore();
const app = buildProfileApi({
  store,
  tokens: [TOKEN],
  logger: createLogger({ level: 'silent', name: 'unit-batch' }),
  rateLimit: false,
  cache: { latencyBudgetMs: 30, uncachedTimeoutMs: 150, freshForMs: 0 },
});
after(() => app.close());

async function batch(ids: string[]) {
  const res = await app.inject({ method: 'POST', url: '/v1/profiles:batchGet', headers: auth, payload: { ids } });
  assert.equal(res.statusCode, 200, res.body);
  return (res.json() as { profiles: { customer_id: string; status: string; profile: { stale: boolean } | null }[] }).profiles;
}

describe('POST /v1/profiles:batchGet', () => {
  it('serves cached profiles as stale and uncached ones as unavailable while the store is down, like the single route', async () => {
    assert.deepEqual(
      (await batch(['c-1', 'c-3'])).map((p) => [p.customer_id, p.status, p.profile?.stale ?? null]),
      [
        ['c-1', 'found', false],
        ['c-3', 'not_found', null],
      ],
    );
    store.down = true;
    const down = await batch(['c-1', 'c-2']);
    assert.deepEqual(
      down.map((p) => [p.customer_id, p.status, p.profile?.stale ?? null]),
      [
        ['c-1', 'found', true],
        ['c-2', 'unavailable', null],
      ],
    );
    const single = await app.inject({ url: '/v1/customers/c-1/profile', headers: auth });
    assert.deepEqual(single.json(), down[0]!.profile);
    assert.equal((await app.inject({ url: '/v1/customers/c-2/profile', headers: auth })).statusCode, 503);
    store.down = false;
    assert.deepEqual(
      (await batch(['c-2'])).map((p) => [p.status, p.profile?.stale]),
      [['found', false]],
    );
  });
});
