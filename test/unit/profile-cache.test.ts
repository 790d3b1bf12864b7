/**
 * CachedProfileReader's background revalidation in batches: copies served as fresh queue
 * their customer, and one refresher reads the queue with one batched store call per interval.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CachedProfileReader, type BatchedProfile, type ProfileCacheOptions, type ProfileStore } from '../../api/cache.js';
import { createLogger } from '../../core/logger.js';
import type { Profile } from '../../core/profile.js';

function profile(id: string, label = 'Regular', updatedAt = '2026-11-25T02:00:00.000Z'): Profile {
  return {
    customer_id: id,
    segment_id: 1,
    segment_label: label,
    model_version: 'm-1',
    features: { monetary_90d: 10 },
    rfm: { recency_days: 3, frequency: 1, monetary: 10, r_score: 3, f_score: 1, m_score: 1 },
    demographics: {},
    updated_at: updatedAt,
  };
}

type Mode = 'ok' | 'error' | 'hang' | 'defer';

/** A store with a batched read; records every call. `defer` parks batched calls until the test releases them. */
class BatchStore implements ProfileStore {
  mode: Mode = 'ok';
  readonly data = new Map<string, Profile>();
  readonly singles: string[] = [];
  readonly batches: string[][] = [];
  readonly parked: Array<() => void> = [];
  unreadable = new Set<string>();

  async getProfile(id: string): Promise<Profile | null> {
    this.singles.push(id);
    if (this.mode === 'error') throw new Error('14 UNAVAILABLE: connect ECONNREFUSED');
    if (this.mode === 'hang') return new Promise<never>(() => {});
    return this.data.get(id) ?? null;
  }

  async getProfiles(ids: readonly string[]): Promise<BatchedProfile[]> {
    this.batches.push([...ids]);
    if (this.mode === 'error') throw new Error('14 UNAVAILABLE: connect ECONNREFUSED');
    if (this.mode === 'hang') return new Promise<never>(() => {});
    const answer = () =>
      ids.map((id) => (this.unreadable.has(id) ? { error: 'does not match the profile schema' } : { profile: this.data.get(id) ?? null }));
    if (this.mode === 'defer') {
      // What the store holds when it is read, not when it answers.
      const snapshot = answer();
      return new Promise((resolve) => this.parked.push(() => resolve(snapshot)));
    }
    return answer();
  }
}

function setup(options: ProfileCacheOptions = {}) {
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', name: 'profile-cache-test' }, { write: (l: string) => void lines.push(l) });
  const store = new BatchStore();
  const reader = new CachedProfileReader(store, logger, {
    latencyBudgetMs: 100,
    uncachedTimeoutMs: 300,
    freshForMs: 60_000,
    refreshAfterMs: 0,
    refreshIntervalMs: 20,
    ...options,
  });
  return { store, reader, lines };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function label(reader: CachedProfileReader, id: string): Promise<string> {
  const r = await reader.read(id);
  assert.ok(r.kind === 'fresh' || r.kind === 'stale', `${id}: ${r.kind}`);
  return r.profile.segment_label;
}

describe('batched revalidation', () => {
  it('revalidates every customer served from the cache with one batched call, not a read each', async () => {
    const { store, reader } = setup();
    const ids = Array.from({ length: 50 }, (_, i) => `c-${i}`);
    for (const id of ids) store.data.set(id, profile(id));
    for (const id of ids) assert.equal((await reader.read(id)).kind, 'fresh'); // uncached: single reads
    assert.equal(store.singles.length, 50);
    for (const id of ids) store.data.set(id, profile(id, 'Updated', '2026-11-26T00:00:00.000Z'));
    // Served from the cache, many times each: all queued, none read on its own.
    for (let round = 0; round < 3; round++) for (const id of ids) assert.equal(await label(reader, id), 'Regular');
    assert.equal(store.singles.length, 50);
    await sleep(60);
    assert.equal(store.batches.length, 1, `batches: ${JSON.stringify(store.batches.map((b) => b.length))}`);
    assert.deepEqual([...store.batches[0]!].sort(), [...ids].sort());
    for (const id of ids) assert.equal(await label(reader, id), 'Updated');
    reader.close();
  });

  it('starts at most one batch per refresh interval and caps its size', async () => {
    const { store, reader } = setup({ refreshIntervalMs: 200, refreshBatchMax: 10 });
    const ids = Array.from({ length: 25 }, (_, i) => `c-${i}`);
    for (const id of ids) store.data.set(id, profile(id));
    for (const id of ids) await reader.read(id);
    for (const id of ids) await reader.read(id);
    await sleep(100);
    assert.deepEqual(
      store.batches.map((b) => b.length),
      [10],
      'one batch of at most 10 at once',
    );
    await sleep(200);
    assert.deepEqual(
      store.batches.map((b) => b.length),
      [10, 10],
    );
    await sleep(200);
    assert.deepEqual(
      store.batches.map((b) => b.length),
      [10, 10, 5],
    );
    assert.equal(new Set(store.batches.flat()).size, 25, 'every queued customer read once');
    reader.close();
  });

  it('does not queue a customer already in a batch on its way', async () => {
    const { store, reader } = setup();
    store.data.set('c-1', profile('c-1'));
    await reader.read('c-1');
    store.mode = 'defer';
    await reader.read('c-1');
    await sleep(40);
    for (let i = 0; i < 20; i++) await reader.read('c-1');
    await sleep(60);
    assert.equal(store.batches.length, 1);
    store.parked.shift()!();
    await sleep(60);
    assert.equal(store.batches.length, 1, 'nothing was left queued behind the batch');
    reader.close();
  });

  it('a request whose copy aged out joins the batch on its way instead of reading on its own', async () => {
    const { store, reader } = setup({ freshForMs: 100, latencyBudgetMs: 300 });
    store.data.set('c-1', profile('c-1', 'First'));
    await reader.read('c-1');
    store.mode = 'defer';
    await reader.read('c-1'); // fresh; queued; the batch reads 'First' and is parked
    await sleep(40);
    assert.equal(store.batches.length, 1);
    await sleep(100); // the copy is past freshForMs now
    const joined = reader.read('c-1');
    await sleep(10);
    assert.equal(store.singles.length, 1, 'no single read beside the batch');
    store.parked.shift()!();
    const r = await joined;
    assert.deepEqual([r.kind, r.kind === 'fresh' && r.profile.segment_label], ['fresh', 'First']);
    reader.close();
  });

  it('a batch that started before a newer read never overwrites what that read cached', async () => {
    const { store, reader } = setup({ freshForMs: 150, uncachedTimeoutMs: 300, latencyBudgetMs: 200 });
    store.data.set('c-1', profile('c-1', 'First'));
    await reader.read('c-1');
    store.mode = 'defer';
    await reader.read('c-1'); // queued; the batch reads 'First' and is parked
    await sleep(40);
    assert.equal(store.batches.length, 1);
    await sleep(300); // past uncachedTimeoutMs: the parked batch is presumed hung, and the copy aged out
    store.mode = 'ok';
    store.data.set('c-1', profile('c-1', 'Newest', '2026-11-27T00:00:00.000Z'));
    assert.equal(await label(reader, 'c-1'), 'Newest'); // another batch, started after the first
    assert.equal(store.batches.length, 2);
    store.parked.shift()!(); // the old batch answers 'First' at last
    await sleep(10);
    store.mode = 'error';
    const r = await reader.read('c-1');
    assert.ok(r.kind === 'fresh' || r.kind === 'stale', r.kind);
    assert.equal(r.profile.segment_label, 'Newest');
    reader.close();
  });

  it('evicts a customer the batch no longer finds', async () => {
    const { store, reader } = setup();
    store.data.set('c-1', profile('c-1'));
    await reader.read('c-1');
    store.data.delete('c-1');
    await reader.read('c-1'); // served from the cache, queued
    await sleep(60);
    assert.equal(store.batches.length, 1);
    assert.equal(reader.size, 0);
    assert.equal((await reader.read('c-1')).kind, 'not_found');
    store.mode = 'error';
    assert.equal((await reader.read('c-1')).kind, 'unavailable', 'nothing cached to serve');
    reader.close();
  });

  it('a customer whose document cannot be read keeps its copy and does not fail the others', async () => {
    const { store, reader, lines } = setup();
    for (const id of ['c-1', 'c-2']) store.data.set(id, profile(id));
    for (const id of ['c-1', 'c-2']) await reader.read(id);
    store.unreadable.add('c-1');
    store.data.set('c-2', profile('c-2', 'Updated', '2026-11-26T00:00:00.000Z'));
    for (const id of ['c-1', 'c-2']) await reader.read(id);
    await sleep(60);
    assert.deepEqual([await label(reader, 'c-1'), await label(reader, 'c-2')], ['Regular', 'Updated']);
    await sleep(60); // another batch with c-1 in it
    assert.ok(store.batches.length >= 2);
    assert.ok(!lines.some((l) => l.includes('profile store failing')));
    const named = lines.filter((l) => l.includes('stored profile cannot be read'));
    assert.equal(named.length, 1, 'named once, not on every batch');
    assert.match(named[0]!, /"customerId":"c-1".*does not match the profile schema/);
    reader.close();
  });

  it('a failing batch marks the store failing once, cached copies are served stale, and it recovers by itself', async () => {
    const { store, reader, lines } = setup();
    for (const id of ['c-1', 'c-2']) store.data.set(id, profile(id));
    for (const id of ['c-1', 'c-2']) await reader.read(id);
    store.mode = 'error';
    for (const id of ['c-1', 'c-2']) assert.equal((await reader.read(id)).kind, 'fresh'); // queued; the batch fails
    await sleep(60);
    assert.equal(store.batches.length, 1);
    for (let i = 0; i < 5; i++) {
      for (const id of ['c-1', 'c-2']) {
        const r = await reader.read(id);
        assert.equal(r.kind, 'stale', `${id} while failing`);
      }
    }
    assert.equal(lines.filter((l) => l.includes('profile store failing')).length, 1, 'logged once per transition');
    store.mode = 'ok';
    store.data.set('c-1', profile('c-1', 'After', '2026-11-26T00:00:00.000Z'));
    const back = await reader.read('c-1');
    assert.deepEqual([back.kind, back.kind === 'fresh' && back.profile.segment_label], ['fresh', 'After']);
    assert.equal(lines.filter((l) => l.includes('profile store answers again')).length, 1);
    reader.close();
  });

  it('serves nothing as fresh once its read started freshForMs ago: the staleness bound', async () => {
    const { store, reader } = setup({ freshForMs: 80, refreshAfterMs: 60_000, latencyBudgetMs: 30 });
    store.data.set('c-1', profile('c-1'));
    await reader.read('c-1');
    store.data.set('c-1', profile('c-1', 'Updated', '2026-11-26T00:00:00.000Z'));
    assert.equal(await label(reader, 'c-1'), 'Regular'); // within the bound: the copy
    await sleep(100);
    assert.equal(await label(reader, 'c-1'), 'Updated'); // past it: the store
    assert.deepEqual(store.batches, [['c-1']], 'the read past the bound; refreshAfterMs not reached, so nothing queued before it');
    store.mode = 'hang';
    await sleep(100);
    const r = await reader.read('c-1');
    assert.equal(r.kind, 'stale', 'past the bound and the store hangs: stale, not fresh');
    reader.close();
  });

  it('copies that aged out together are read in one batch, sent at once, not one read each', async () => {
    const { store, reader } = setup({ freshForMs: 50, refreshAfterMs: 0, refreshIntervalMs: 10_000 });
    const ids = Array.from({ length: 30 }, (_, i) => `c-${i}`);
    for (const id of ids) store.data.set(id, profile(id));
    for (const id of ids) await reader.read(id);
    for (const id of ids) await reader.read(id); // fresh: a background batch goes out, the next one not for 10 s
    await sleep(70);
    for (const id of ids) store.data.set(id, profile(id, 'Updated', '2026-11-26T00:00:00.000Z'));
    const t0 = performance.now();
    const answers = await Promise.all(ids.map((id) => reader.read(id)));
    assert.ok(performance.now() - t0 < 80, 'not held back by the refresh interval');
    assert.ok(answers.every((a) => a.kind === 'fresh' && a.profile.segment_label === 'Updated'));
    assert.equal(store.singles.length, 30, 'only the first, uncached reads were single');
    assert.deepEqual(
      store.batches.map((b) => b.length),
      [30, 30],
    );
    reader.close();
  });

  it('a customer someone waits for goes in the next batch before background revalidations', async () => {
    const { store, reader } = setup({ freshForMs: 200, refreshAfterMs: 0, refreshBatchMax: 5, refreshIntervalMs: 10_000 });
    const ids = Array.from({ length: 12 }, (_, i) => `c-${i}`);
    for (const id of [...ids, 'late']) store.data.set(id, profile(id));
    await reader.read('late');
    await sleep(250); // 'late' aged out
    for (const id of ids) await reader.read(id); // uncached: single reads
    for (const id of ids) await reader.read(id); // fresh: queued for revalidation
    const waiting = reader.read('late'); // queued behind them, but someone waits for it
    assert.equal((await waiting).kind, 'fresh');
    assert.equal(store.batches.length, 1, 'the background ones wait for the refresh interval');
    assert.equal(store.batches[0]!.length, 5);
    assert.equal(store.batches[0]![0], 'late');
    reader.close();
  });

  it('close() stops the refresher', async () => {
    const { store, reader } = setup({ refreshIntervalMs: 50 });
    store.data.set('c-1', profile('c-1'));
    await reader.read('c-1');
    await reader.read('c-1'); // queued
    reader.close();
    await sleep(80);
    assert.equal(store.batches.length, 0);
    assert.equal((await reader.read('c-1')).kind, 'fresh', 'reads still work');
  });

  it('rejects settings that are not whole numbers', () => {
    const logger = createLogger({ level: 'silent' });
    assert.throws(
      () => new CachedProfileReader(new BatchStore(), logger, { refreshBatchMax: 0 }),
      /refreshBatchMax to be a whole number >= 1/,
    );
    assert.throws(() => new CachedProfileReader(new BatchStore(), logger, { refreshIntervalMs: 1.5 }), /refreshIntervalMs/);
  });
});
