/**
 * Profile writes and reads against the real Firestore emulator, in a collection
 * of this run's own.
 */
import type { Firestore } from '@google-cloud/firestore';
import { failureOf } from '../support/assertions.js';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createGcpClients, closeGcpClients, type GcpClients } from '../../stores/clients.js';
import { createProfileStore, createProfileUpdater, type OnlineProfileStore } from '../../stores/profiles.js';
import { loadConfig, type Config } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import { compareProfileRecency, type Profile } from '../../core/profile.js';

let config: Config;
let clients: GcpClients;
let profiles: OnlineProfileStore;
const logLines: string[] = [];

before(() => {
  config = loadConfig({ ...process.env, SEGFLOW_FIRESTORE_PROFILES: `test_profiles_${randomUUID().slice(0, 8)}`, LOG_LEVEL: 'info' });
  clients = createGcpClients(config);
  const logger = createLogger({ level: 'info', name: 'test-profiles' }, { write: (l: string) => void logLines.push(l) });
  profiles = createProfileStore({ firestore: clients.firestore, config, logger, bulk: { readChunkSize: 7, progressEvery: 10 } });
});

after(async () => {
  await clients.firestore.recursiveDelete(clients.firestore.collection(config.firestore.profiles));
  await closeGcpClients(clients);
});

function profile(id: string, overrides: Partial<Profile> = {}): Profile {
  return {
    customer_id: id,
    segment_id: 1,
    segment_label: 'Occasional',
    model_version: 'm-1',
    features: { monetary_90d: 120, orders_90d: 2 },
    rfm: { recency_days: 20, frequency: 2, monetary: 120, r_score: 3, f_score: 2, m_score: 2 },
    demographics: { country: 'FR' },
    updated_at: '2026-11-25T10:00:00.000Z',
    ...overrides,
  };
}

function doc(id: string) {
  return clients.firestore.collection(config.firestore.profiles).doc(id);
}

describe('compareProfileRecency', () => {
  it('orders by how far the data reaches, then by computation time', () => {
    const a = { updated_at: '2026-11-25T02:00:00Z', source_event_time: '2026-11-25T00:00:00Z' };
    const b = { updated_at: '2026-11-25T01:00:00Z', source_event_time: '2026-11-25T00:59:00Z' };
    assert.ok(compareProfileRecency(b, a) > 0);
    assert.ok(compareProfileRecency({ updated_at: '2026-11-25T03:00:00Z' }, a) > 0);
    assert.equal(compareProfileRecency(a, { ...a }), 0);
    assert.ok(compareProfileRecency({ ...a, updated_at: '2026-11-25T02:00:01Z' }, a) > 0);
    // Offsets are compared as instants, not as text.
    assert.equal(compareProfileRecency({ updated_at: '2026-11-25T11:00:00+01:00' }, { updated_at: '2026-11-25T10:00:00Z' }), 0);
  });
});

describe('writeProfile', () => {
  it('creates, then updates with the previous segment, and reports segment changes', async () => {
    const first = await profiles.writeProfile(profile('w-1'));
    assert.deepEqual(first, { written: true, outcome: 'created', previousSegment: null, previousModelVersion: null, segmentChanged: true });

    const second = await profiles.writeProfile(
      profile('w-1', { segment_id: 3, segment_label: 'VIP', model_version: 'm-2', updated_at: '2026-11-25T11:00:00Z' }),
    );
    assert.deepEqual(second, {
      written: true,
      outcome: 'updated',
      previousSegment: { id: 1, label: 'Occasional', parent: null },
      previousModelVersion: 'm-1',
      segmentChanged: true,
    });
    const same = await profiles.writeProfile(
      profile('w-1', {
        segment_id: 3,
        segment_label: 'VIP',
        model_version: 'm-2',
        updated_at: '2026-11-25T12:00:00Z',
        features: { monetary_90d: 130 },
      }),
    );
    assert.deepEqual([same.written, same.segmentChanged], [true, false]);
    const stored = await profiles.readProfile('w-1');
    assert.deepEqual(stored?.features, { monetary_90d: 130 });
    assert.equal(stored?.updated_at, '2026-11-25T12:00:00.000Z');
  });

  it('never replaces a newer profile with an older one, and a retried write is a no-op', async () => {
    const newer = profile('w-2', { segment_id: 3, segment_label: 'VIP', updated_at: '2026-11-25T12:00:00Z' });
    await profiles.writeProfile(newer);
    const { updateTime } = await doc('w-2').get();

    const older = await profiles.writeProfile(profile('w-2', { updated_at: '2026-11-25T11:59:59.999Z' }));
    assert.deepEqual(older, {
      written: false,
      outcome: 'not_newer',
      previousSegment: { id: 3, label: 'VIP', parent: null },
      previousModelVersion: 'm-1',
      segmentChanged: false,
    });
    const retry = await profiles.writeProfile(newer);
    assert.equal(retry.written, false);

    const after = await doc('w-2').get();
    assert.ok(after.updateTime?.isEqual(updateTime!), 'the stored document was written again');
    assert.equal((await profiles.readProfile('w-2'))?.segment_label, 'VIP');
  });

  it('a batch profile computed later over older data does not replace a real-time one', async () => {
    await profiles.writeProfile(
      profile('w-3', {
        segment_id: 3,
        segment_label: 'VIP',
        updated_at: '2026-11-25T01:00:00Z',
        source_event_time: '2026-11-25T00:59:00Z',
      }),
    );
    const batch = await profiles.writeProfile(
      profile('w-3', { updated_at: '2026-11-25T02:00:00Z', source_event_time: '2026-11-25T00:00:00Z' }),
    );
    assert.equal(batch.written, false);
    assert.equal((await profiles.readProfile('w-3'))?.segment_label, 'VIP');
  });

  it('concurrent writers end with the newest profile', async () => {
    const versions = Array.from({ length: 12 }, (_, i) =>
      profile('w-4', { segment_id: i, segment_label: `S${i}`, updated_at: new Date(Date.UTC(2026, 10, 25, 10, 0, i)).toISOString() }),
    );
    // Newest first, so a last-writer-wins store would end with an older one.
    const results = await Promise.all(versions.reverse().map((v) => profiles.writeProfile(v)));
    assert.ok(results.some((r) => r.written));
    const stored = await profiles.readProfile('w-4');
    assert.equal(stored?.segment_label, 'S11');
  });

  it('refuses an invalid profile for good (non-retryable), writing nothing', async () => {
    const failure = await failureOf(
      profiles.writeProfile({ ...profile('w-5'), rfm: { ...profile('w-5').rfm, r_score: 9 }, updated_at: 'yesterday' }),
    );
    assert.equal(failure.nonRetryable, true);
    assert.equal(failure.type, 'InvalidProfile');
    assert.match(failure.message, /rfm\.r_score: expected a score <= 5/);
    assert.match(failure.message, /updated_at: expected an RFC 3339 timestamp/);
    assert.equal((await doc('w-5').get()).exists, false);
  });

  it('repairs a stored document that no longer reads as a profile', async () => {
    await doc('w-6').set({ junk: true });
    const r = await profiles.writeProfile(profile('w-6'));
    assert.deepEqual([r.written, r.outcome, r.previousSegment], [true, 'updated', null]);
    assert.equal((await profiles.readProfile('w-6'))?.segment_label, 'Occasional');
  });
});

describe('updateProfile (read, compute and write with no lost update)', () => {
  const updater = () => createProfileUpdater({ firestore: clients.firestore, config, logger: createLogger({ level: 'silent' }) });
  /** One more purchase on top of whatever is stored, computed a bit later each time. */
  const onePurchase =
    (id: string) =>
    (stored: Profile | null): Profile => {
      const base = stored ?? profile(id, { rfm: { recency_days: null, frequency: 0, monetary: 0, r_score: 1, f_score: 1, m_score: 1 } });
      const frequency = base.rfm.frequency + 1;
      return { ...base, rfm: { ...base.rfm, frequency }, updated_at: new Date(Date.parse(base.updated_at) + 1000).toISOString() };
    };

  it('computes from the stored profile (or none), writes it, and reports the previous segment', async () => {
    const update = updater();
    const first = await update('u-1', onePurchase('u-1'));
    assert.equal(first.outcome, 'created');
    assert.equal(first.stored, null);
    assert.equal(first.segmentChanged, true);
    const second = await update('u-1', (stored) => ({ ...onePurchase('u-1')(stored), segment_id: 3, segment_label: 'VIP' }));
    assert.equal(second.outcome, 'updated');
    assert.equal(second.stored?.rfm.frequency, 1);
    assert.deepEqual(second.previousSegment, { id: 1, label: 'Occasional', parent: null });
    assert.equal(second.segmentChanged, true);
    assert.equal((await doc('u-1').get()).get('rfm.frequency'), 2);
  });

  it('loses no update when two run at once: the one that lost the race computes again on what the other wrote', async () => {
    const update = updater();
    await profiles.writeProfile(profile('u-2'));
    const results = await Promise.all(Array.from({ length: 4 }, () => update('u-2', onePurchase('u-2'))));
    assert.ok(results.every((r) => r.written));
    assert.equal((await doc('u-2').get()).get('rfm.frequency'), 2 + 4, 'every increment landed');
  });

  it('starts from the document it wrote last, and computes again when another writer changed it since', async () => {
    const update = updater();
    await update('u-4', onePurchase('u-4'));
    const second = await update('u-4', onePurchase('u-4'));
    assert.equal(second.stored?.rfm.frequency, 1);
    // Someone else writes (a profile sync, another worker): the remembered copy is out of date.
    await doc('u-4').update({ 'rfm.frequency': 10, extra: 'from elsewhere' });
    const third = await update('u-4', onePurchase('u-4'));
    assert.equal(third.stored?.rfm.frequency, 10, 'computed on what the other writer stored, not on the remembered copy');
    const snap = await doc('u-4').get();
    assert.equal(snap.get('rfm.frequency'), 11);
    assert.equal(snap.get('extra'), undefined, 'what is stored is the written document, as a set() would leave it');
    assert.equal(third.committedAt, snap.updateTime!.toDate().toISOString());
    // The remembered copy of a deleted document is refused too; the update creates it anew.
    await doc('u-4').delete();
    const fourth = await update('u-4', onePurchase('u-4'));
    assert.deepEqual([fourth.outcome, fourth.stored], ['created', null]);
  });

  it('keeps a newer stored profile, and refuses an invalid or misaddressed one for good', async () => {
    const update = updater();
    await profiles.writeProfile(profile('u-3', { updated_at: '2026-11-25T12:00:00Z' }));
    const older = await update('u-3', () =>
      profile('u-3', { updated_at: '2026-11-25T11:00:00Z', segment_id: 4, segment_label: 'Lapsing' }),
    );
    assert.equal(older.outcome, 'not_newer');
    assert.equal((await doc('u-3').get()).get('segment_label'), 'Occasional');
    const invalid = await failureOf(update('u-3', () => ({ ...profile('u-3'), segment_id: -1 })));
    assert.equal(invalid.type, 'InvalidProfile');
    const elsewhere = await failureOf(update('u-3', () => profile('someone-else', { updated_at: '2026-11-26T00:00:00Z' })));
    assert.equal(elsewhere.type, 'InvalidProfile');
    assert.equal((await doc('u-3').get()).get('segment_label'), 'Occasional');
  });
});

describe('readProfile', () => {
  it('returns null for an unknown customer and refuses malformed ids without a read', async () => {
    assert.equal(await profiles.readProfile('nobody-here'), null);
    for (const bad of ['..', '../x', 'a/b', '__name__', 'x'.repeat(10_000), '']) {
      const failure = await failureOf(profiles.readProfile(bad));
      assert.equal(failure.type, 'InvalidCustomerId');
      assert.ok(failure.message.length < 400);
    }
  });

  it('names a stored document that does not match the schema', async () => {
    await doc('r-1').set({ ...profile('r-1'), segment_id: 'three' });
    const failure = await failureOf(profiles.readProfile('r-1'));
    assert.equal(failure.type, 'InvalidStoredProfile');
    assert.match(failure.message, /segment_id/);
  });
});

describe('writeProfilesBulk', () => {
  it('writes only customers whose profile changed, never older over newer, and logs progress', async () => {
    // Existing state: b-0..b-9.
    const existing = Array.from({ length: 10 }, (_, i) => profile(`b-${i}`));
    await Promise.all(existing.map((p) => profiles.writeProfile(p)));
    await profiles.writeProfile(profile('b-9', { segment_id: 5, segment_label: 'Newer', updated_at: '2026-11-26T00:00:00Z' }));
    const times = new Map(
      await Promise.all(existing.map(async (p) => [p.customer_id, (await doc(p.customer_id).get()).updateTime!] as const)),
    );

    const sync = '2026-11-25T20:00:00.000Z';
    const input: unknown[] = [
      // b-0..b-3: same content, later computation -> unchanged, no write.
      ...[0, 1, 2, 3].map((i) => profile(`b-${i}`, { updated_at: sync })),
      // b-4..b-6: a different segment -> updated.
      ...[4, 5, 6].map((i) => profile(`b-${i}`, { segment_id: 2, segment_label: 'Regular', updated_at: sync })),
      // b-7: new features, same segment -> updated, no segment change.
      profile('b-7', { features: { monetary_90d: 999, orders_90d: 9 }, updated_at: sync }),
      // b-8: older than stored -> kept.
      profile('b-8', { segment_id: 4, segment_label: 'Old news', updated_at: '2026-11-24T00:00:00Z' }),
      // b-9: stored is newer -> kept.
      profile('b-9', { segment_id: 2, segment_label: 'Regular', updated_at: sync }),
      // n-0..n-19: new customers.
      ...Array.from({ length: 20 }, (_, i) => profile(`n-${i}`, { updated_at: sync })),
      // Invalid rows are counted and reported, not written.
      { ...profile('bad-1'), segment_id: -1 },
      { customer_id: '../etc', nonsense: true },
    ];
    const summary = await profiles.writeProfilesBulk(input as Profile[]);
    assert.deepEqual(
      {
        received: summary.received,
        invalid: summary.invalid,
        created: summary.created,
        updated: summary.updated,
        unchanged: summary.unchanged,
        notNewer: summary.notNewer,
        segmentChanged: summary.segmentChanged,
        failed: summary.failed,
      },
      { received: 32, invalid: 2, created: 20, updated: 4, unchanged: 4, notNewer: 2, segmentChanged: 23, failed: 0 },
    );
    assert.equal(summary.invalidSamples.length, 2);
    assert.match(summary.invalidSamples.join('\n'), /bad-1: segment_id: expected a segment id >= 0/);

    for (const i of [0, 1, 2, 3, 8, 9]) {
      const t = (await doc(`b-${i}`).get()).updateTime!;
      assert.ok(t.isEqual(times.get(`b-${i}`)!), `b-${i} was rewritten`);
    }
    assert.equal((await profiles.readProfile('b-5'))?.segment_label, 'Regular');
    assert.deepEqual((await profiles.readProfile('b-7'))?.features, { monetary_90d: 999, orders_90d: 9 });
    assert.equal((await profiles.readProfile('b-8'))?.segment_label, 'Occasional');
    assert.equal((await profiles.readProfile('b-9'))?.segment_label, 'Newer');
    assert.equal((await profiles.readProfile('n-19'))?.updated_at, sync);
    assert.equal((await doc('bad-1').get()).exists, false);

    const progress = logLines.filter((l) => l.includes('profile sync progress'));
    assert.ok(progress.length >= 2, `expected progress lines, got ${progress.length}`);
    assert.ok(logLines.some((l) => l.includes('profile sync finished') && l.includes('"created":20')));

    // The same input again changes nothing.
    const again = await profiles.writeProfilesBulk(input as Profile[]);
    assert.deepEqual([again.created, again.updated, again.unchanged + again.notNewer], [0, 0, 30]);
  });

  it('removes source_event_time when the new profile has none, so the stored document equals the profile', async () => {
    await profiles.writeProfile(profile('s-1', { source_event_time: '2026-11-25T09:00:00Z' }));
    await profiles.writeProfilesBulk([profile('s-1', { segment_id: 2, segment_label: 'Regular', updated_at: '2026-11-25T12:00:00Z' })]);
    const stored = (await doc('s-1').get()).data();
    assert.equal(stored?.segment_label, 'Regular');
    assert.equal('source_event_time' in (stored ?? {}), false);
  });

  it('keeps a profile written between its read and its write (precondition, then transaction)', async () => {
    await profiles.writeProfile(profile('c-1'));
    const racer = profile('c-1', { segment_id: 9, segment_label: 'Real-time', updated_at: '2026-11-26T00:00:00Z' });
    const racerNew = profile('c-2', { segment_id: 9, segment_label: 'Real-time', updated_at: '2026-11-26T00:00:00Z' });
    const real = clients.firestore;
    // A Firestore whose getAll lets real-time writes land right after the read.
    const racing = new Proxy(real, {
      get(target, prop) {
        if (prop === 'getAll') {
          return async (...args: Parameters<Firestore['getAll']>) => {
            const snaps = await target.getAll(...args);
            await profiles.writeProfile(racer);
            await profiles.writeProfile(racerNew);
            return snaps;
          };
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const logger = createLogger({ level: 'silent' });
    const bulk = createProfileStore({ firestore: racing, config, logger });
    const summary = await bulk.writeProfilesBulk([
      profile('c-1', { segment_id: 2, segment_label: 'Batch', updated_at: '2026-11-25T20:00:00Z' }),
      profile('c-2', { segment_id: 2, segment_label: 'Batch', updated_at: '2026-11-25T20:00:00Z' }),
    ]);
    assert.deepEqual([summary.conflicts, summary.notNewer, summary.updated, summary.created, summary.failed], [2, 2, 0, 0, 0]);
    assert.equal((await profiles.readProfile('c-1'))?.segment_label, 'Real-time');
    assert.equal((await profiles.readProfile('c-2'))?.segment_label, 'Real-time');
  });
});
