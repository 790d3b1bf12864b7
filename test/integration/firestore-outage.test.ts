/**
 * The profile API with its Firestore emulator really stopped: a private emulator
 * (test/support/private-firestore.ts) is killed with SIGKILL while the API, built
 * as `npm start` builds it (default cache settings), keeps serving; then the
 * emulator is started again and the API recovers with no restart of its own.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createFirestoreProfileStore } from '../../api/firestore-store.js';
import { buildProfileApi } from '../../api/server.js';
import { closeGcpClients, createGcpClients, type GcpClients } from '../../stores/clients.js';
import { createProfileStore } from '../../stores/profiles.js';
import { loadConfig, type Config } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import type { Profile } from '../../core/profile.js';
import { startPrivateFirestore, type PrivateFirestore } from '../support/private-firestore.js';

const TOKEN = 'outage-token-0123456789';

let emulator: PrivateFirestore;
let config: Config;
let apiClients: GcpClients;
let app: ReturnType<typeof buildProfileApi>;
let base: string;

before(async () => {
  emulator = await startPrivateFirestore('outage');
  config = loadConfig({ ...process.env, FIRESTORE_EMULATOR_HOST: emulator.host, SEGFLOW_API_TOKENS: TOKEN, LOG_LEVEL: 'error' });
  apiClients = createGcpClients(config);
  const logger = createLogger({ level: config.log.level, name: 'test-firestore-outage' });
  app = buildProfileApi({
    store: createFirestoreProfileStore({ firestore: apiClients.firestore, config, logger }),
    tokens: config.api.tokens,
    logger,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

after(async () => {
  await app?.close();
  if (apiClients) await closeGcpClients(apiClients);
  await emulator?.kill();
});

/** Writes through a client of its own, as the worker would (the API's client never writes). */
async function write(p: Profile): Promise<void> {
  const clients = createGcpClients(config);
  try {
    const logger = createLogger({ level: 'error', name: 'test-firestore-outage-writer' });
    const result = await createProfileStore({ firestore: clients.firestore, config, logger }).writeProfile(p);
    assert.equal(result.written, true);
  } finally {
    await closeGcpClients(clients);
  }
}

function profile(id: string, label: string, updatedAt: string): Profile {
  return {
    customer_id: id,
    segment_id: label === 'VIP' ? 3 : 1,
    segment_label: label,
    model_version: 'm-2026-11-26',
    features: { monetary_90d: 820.5, orders_90d: 6, email_open_rate: 0.4 },
    rfm: { recency_days: 3, frequency: 6, monetary: 820.5, r_score: 4, f_score: 4, m_score: 4 },
    demographics: { age: 41, country: 'DE', city: 'Berlin', income_band: 'middle' },
    updated_at: updatedAt,
    source_event_time: updatedAt,
  };
}

async function get(path: string, token: string | null = TOKEN) {
  const res = await fetch(`${base}${path}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

describe('profile API with the Firestore emulator stopped', () => {
  it('serves cached customers stale with no 5xx while it is down, 503 for the others, and recovers by itself when it is back', async () => {
    await write(profile('cached-1', 'VIP', '2026-11-26T01:00:00.000Z'));
    await write(profile('cached-2', 'VIP', '2026-11-26T01:00:00.000Z'));
    await write(profile('never-read', 'Occasional', '2026-11-26T01:00:00.000Z'));
    for (const id of ['cached-1', 'cached-2']) {
      const first = await get(`/v1/customers/${id}/profile`);
      assert.deepEqual([first.status, first.body.stale, first.body.segment_label], [200, false, 'VIP']);
    }

    await emulator.kill();
    // Ask for a few seconds, past the cache's fresh window, its latency budget and the gRPC
    // client's first reconnect attempts: every answer for a cached customer is a 200.
    const statuses = new Map<number, number>();
    let staleSeen = 0;
    const until = Date.now() + 4_000;
    while (Date.now() < until) {
      for (const id of ['cached-1', 'cached-2']) {
        const r = await get(`/v1/customers/${id}/profile`);
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r.status === 200) assert.equal(r.body.segment_label, 'VIP');
        if (r.body.stale === true) staleSeen += 1;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual([...statuses.keys()], [200], `statuses while down: ${JSON.stringify([...statuses])}`);
    assert.ok(staleSeen > 0, 'answers while the store is down are marked stale');
    const last = await get('/v1/customers/cached-1/profile');
    assert.deepEqual([last.status, last.body.stale], [200, true]);
    const uncached = await get('/v1/customers/never-read/profile');
    assert.equal(uncached.status, 503, 'a customer never read has nothing to fall back on');
    const health = await get('/healthz', null);
    assert.deepEqual([health.status, health.body.status, health.body.store], [200, 'degraded', 'unreachable']);

    // Back, empty (the emulator keeps data in memory): the worker writes a newer profile, as it
    // would on the next event, and the same API process serves it fresh.
    await emulator.start();
    const backAt = Date.now();
    await write(profile('cached-1', 'Occasional', '2026-11-26T02:00:00.000Z'));
    let recovered: Record<string, unknown> | undefined;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      const r = await get('/v1/customers/cached-1/profile');
      assert.equal(r.status, 200, 'no error while the API reconnects');
      if (r.body.stale === false && r.body.segment_label === 'Occasional') {
        recovered = r.body;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(recovered, `the API still served stale copies 90 s after the emulator was back (log: ${emulator.log})`);
    const recoveredMs = Date.now() - backAt;
    await new Promise((r) => setTimeout(r, 1_100)); // the health probe result is shared for a second
    assert.equal((await get('/healthz', null)).body.store, 'reachable');
    console.log(`API fresh again ${recoveredMs} ms after the emulator answered`);
  });
});
