/**
 * Reads through an in-process LRU cache of the last good profile per customer.
 *
 * A copy younger than `freshForMs` is served as fresh; once `refreshAfterMs` old, serving it
 * queues the customer for one batched store read (Firestore getAll) every `refreshIntervalMs`,
 * so a busy API costs the store a few calls a second, not one per request, and an asked-for
 * copy stays well inside the one-second visibility target. Any other request asks the store
 * (so a recovered Firestore is used at once, with no circuit to reset), joining a read already
 * on its way; it waits `latencyBudgetMs` when a cached copy exists, then serves that as stale,
 * and `uncachedTimeoutMs` when none does. A late read still refreshes the cache. While the store
 * fails nothing is fresh: every request asks again, which is how recovery is noticed.
 */
import { LRUCache } from 'lru-cache';
import type { Logger } from '../core/logger.js';
import type { Profile } from '../core/profile.js';

/** One customer's answer in a batched read: the profile, null when there is none, or why it could not be read. */
export type BatchedProfile = { profile: Profile | null } | { error: string };

export interface ProfileStore {
  getProfile(customerId: string): Promise<Profile | null>;
  /**
   * Many customers in one round trip, answers in the order asked. Optional: without
   * it, background revalidation reads one customer at a time.
   */
  getProfiles?(customerIds: readonly string[]): Promise<readonly BatchedProfile[]>;
  /** Resolves when the store answers; used by /healthz. */
  ping?(): Promise<void>;
}

export interface ProfileCacheOptions {
  /** Customers kept (least recently used are evicted first). */
  maxEntries?: number;
  /** A cached profile older than this is not served, even as stale. */
  maxStaleMs?: number;
  /** How long a read waits for the store when a cached copy could be served instead. */
  latencyBudgetMs?: number;
  /** How long a read waits for the store when no cached copy exists. */
  uncachedTimeoutMs?: number;
  /**
   * A copy whose store read started less than this long ago is served as fresh
   * without waiting for the store (0 turns this off). Keeps the API's latency off
   * the store's under load; bounded well below the one-second visibility target.
   */
  freshForMs?: number;
  /** A fresh copy older than this is revalidated in the background when served. */
  refreshAfterMs?: number;
  /** At most one batched revalidation read starts per this interval. */
  refreshIntervalMs?: number;
  /** Customers per batched revalidation read (more wait for the next one). */
  refreshBatchMax?: number;
}

export const CACHE_DEFAULTS = {
  maxEntries: 50_000,
  maxStaleMs: 24 * 60 * 60 * 1000,
  latencyBudgetMs: 50,
  uncachedTimeoutMs: 1_000,
  freshForMs: 500,
  refreshAfterMs: 100,
  refreshIntervalMs: 100,
  refreshBatchMax: 500,
} as const satisfies Required<ProfileCacheOptions>;

export type CachedRead =
  | { kind: 'fresh'; profile: Profile }
  | { kind: 'stale'; profile: Profile; cachedAt: number; reason: string }
  | { kind: 'not_found' }
  | { kind: 'unavailable'; reason: string };

interface Entry {
  profile: Profile;
  /**
   * When the read that produced this entry started: orders reads that finish out of
   * order, and dates the copy (it holds every write committed before then).
   */
  readStartedAt: number;
  cachedAt: number;
}

type Settled = { ok: true; value: Profile | null } | { ok: false; reason: string };

export class CachedProfileReader {
  readonly settings: Required<ProfileCacheOptions>;
  private readonly cache: LRUCache<string, Entry>;
  /** One store read per customer at a time: a hot customer during an outage costs one pending call, not thousands. */
  private readonly inflight = new Map<string, { settled: Promise<Settled>; startedAt: number }>();
  private storeFailing = false;
  /** Customers waiting for the next batched revalidation. */
  private readonly refreshQueue = new Set<string>();
  /** The batched read in progress, if any. */
  private batch: { ids: ReadonlySet<string>; startedAt: number; settled: Promise<ReadonlyMap<string, Settled> | Settled> } | undefined;
  /** Requests waiting for a customer's next batched read (its copy aged out; see batchedRead). */
  private readonly waiters = new Map<string, { settled: Promise<Settled>; resolve: (s: Settled) => void }>();
  private lastBatchAt = Number.NEGATIVE_INFINITY;
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshDueAt = 0;
  /** Customers whose stored document a batch could not read, already logged. */
  private readonly unreadable = new Set<string>();
  private closed = false;

  constructor(
    private readonly store: ProfileStore,
    private readonly logger: Logger,
    options: ProfileCacheOptions = {},
  ) {
    this.settings = { ...CACHE_DEFAULTS, ...stripUndefined(options) };
    for (const [k, v] of Object.entries(this.settings)) {
      const min = k === 'freshForMs' || k === 'refreshAfterMs' || k === 'refreshIntervalMs' ? 0 : 1;
      if (!Number.isInteger(v) || v < min) throw new Error(`profile cache: expected ${k} to be a whole number >= ${min}, got ${v}`);
    }
    this.cache = new LRUCache<string, Entry>({ max: this.settings.maxEntries, ttl: this.settings.maxStaleMs, updateAgeOnGet: false });
  }

  get size(): number {
    return this.cache.size;
  }

  /** Stops background revalidation (queued customers are dropped); reads keep working. */
  close(): void {
    this.closed = true;
    clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    this.refreshQueue.clear();
    for (const w of this.waiters.values()) w.resolve({ ok: false, reason: 'the profile cache is closed' });
    this.waiters.clear();
  }

  async read(customerId: string): Promise<CachedRead> {
    const cached = this.cache.get(customerId);
    if (cached && !this.storeFailing) {
      const age = Date.now() - cached.readStartedAt;
      if (age < this.settings.freshForMs) {
        // Revalidate in the background; this request does not wait.
        if (age >= this.settings.refreshAfterMs) this.revalidate(customerId);
        return { kind: 'fresh', profile: cached.profile };
      }
    }
    const waitMs = cached ? this.settings.latencyBudgetMs : this.settings.uncachedTimeoutMs;
    // A cached customer is read together with the others when the store can batch: if many copies
    // age out at once (a pause, a burst after a quiet spell), that costs the store one call, not one
    // per customer, and the API does not bury itself in reads just when it is behind.
    const read = cached && this.store.getProfiles !== undefined && !this.closed ? this.batchedRead(customerId) : this.storeRead(customerId);
    const outcome = await withDeadline(read, waitMs);
    if (outcome.ok) {
      return outcome.value === null ? { kind: 'not_found' } : { kind: 'fresh', profile: outcome.value };
    }
    // Re-read: a slow store read may have refreshed the entry while we waited.
    const fallback = this.cache.get(customerId) ?? cached;
    if (fallback) return { kind: 'stale', profile: fallback.profile, cachedAt: fallback.cachedAt, reason: outcome.reason };
    return { kind: 'unavailable', reason: outcome.reason };
  }

  /** Caches what a read that started at `startedAt` found, unless a read that started later already did. */
  private settle(customerId: string, profile: Profile | null, startedAt: number, onlyIfCached: boolean): void {
    const current = this.cache.get(customerId);
    if (current === undefined ? onlyIfCached : current.readStartedAt > startedAt) return;
    if (profile === null)
      this.cache.delete(customerId); // erased customers must not live on in the cache
    else this.cache.set(customerId, { profile, readStartedAt: startedAt, cachedAt: Date.now() });
  }

  private storeRead(customerId: string): Promise<Settled> {
    const now = Date.now();
    // Join a read in progress, single or batched, unless it has hung for longer than anyone
    // waits: then a new one goes out, so the API sees a recovered store within a second.
    const onItsWay = this.readOnItsWay(customerId);
    if (onItsWay) return onItsWay;
    const startedAt = now;
    const onProfile = (profile: Profile | null): Settled => {
      this.settle(customerId, profile, startedAt, false);
      this.markStore(true);
      return { ok: true, value: profile };
    };
    const onError = (err: unknown): Settled => {
      this.markStore(false, err);
      return { ok: false, reason: `the profile store failed after ${Date.now() - startedAt} ms: ${errorMessage(err)}` };
    };
    // Through a promise so a store that throws synchronously counts as a failed read too.
    const settled = Promise.resolve()
      .then(() => this.store.getProfile(customerId))
      .then(onProfile, onError)
      .finally(() => {
        if (this.inflight.get(customerId)?.settled === settled) this.inflight.delete(customerId);
      });
    this.inflight.set(customerId, { settled, startedAt });
    return settled;
  }

  /** True while a read of this customer, single or batched, is on its way and not presumed hung. */
  private reading(customerId: string): boolean {
    const running = this.inflight.get(customerId);
    if (running && this.live(running.startedAt)) return true;
    return this.batch !== undefined && this.batch.ids.has(customerId) && this.live(this.batch.startedAt);
  }

  /** The outcome of a read of this customer already on its way, if there is one. */
  private readOnItsWay(customerId: string): Promise<Settled> | undefined {
    const running = this.inflight.get(customerId);
    if (running && this.live(running.startedAt)) return running.settled;
    const batch = this.batch;
    return batch?.ids.has(customerId) && this.live(batch.startedAt) ? batch.settled.then((r) => resultFor(customerId, r)) : undefined;
  }

  /**
   * A read through the next batch, which goes out at once (not after refreshIntervalMs) because
   * someone waits for it; joins a read of this customer already on its way.
   */
  private batchedRead(customerId: string): Promise<Settled> {
    const onItsWay = this.readOnItsWay(customerId);
    if (onItsWay) return onItsWay;
    let waiter = this.waiters.get(customerId);
    if (waiter === undefined) {
      let resolve!: (s: Settled) => void;
      const settled = new Promise<Settled>((r) => (resolve = r));
      waiter = { settled, resolve };
      this.waiters.set(customerId, waiter);
    }
    this.refreshQueue.add(customerId);
    this.scheduleBatch();
    return waiter.settled;
  }

  /** A batch (or single read) younger than the longest wait is still worth waiting for; an older one is presumed hung. */
  private live(startedAt: number): boolean {
    return Date.now() - startedAt < this.settings.uncachedTimeoutMs;
  }

  private revalidate(customerId: string): void {
    if (this.store.getProfiles === undefined) {
      void this.storeRead(customerId); // one read per customer at a time, as before batching
      return;
    }
    if (this.closed || this.refreshQueue.has(customerId) || this.reading(customerId)) return;
    this.refreshQueue.add(customerId);
    this.scheduleBatch();
  }

  /**
   * Arms the refresher: the next batch goes out refreshIntervalMs after the previous one started,
   * or at once when a request waits for it. One batch is on its way at a time (unless it hangs).
   */
  private scheduleBatch(): void {
    if (this.closed || this.refreshQueue.size === 0) return;
    if (this.batch !== undefined && this.live(this.batch.startedAt)) return; // its end schedules the next
    const now = Date.now();
    const wait = this.waiters.size > 0 ? 0 : Math.max(0, this.lastBatchAt + this.settings.refreshIntervalMs - now);
    if (this.refreshTimer !== undefined) {
      if (this.refreshDueAt <= now + wait) return;
      clearTimeout(this.refreshTimer);
    }
    this.refreshDueAt = now + wait;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      this.startBatch();
    }, wait);
    this.refreshTimer.unref();
  }

  private startBatch(): void {
    const getProfiles = this.store.getProfiles?.bind(this.store);
    if (this.closed || getProfiles === undefined) return;
    if (this.batch !== undefined && this.live(this.batch.startedAt)) return;
    // Customers someone waits for first, then the background revalidations.
    const ids: string[] = [];
    for (const id of this.waiters.keys()) {
      if (ids.length >= this.settings.refreshBatchMax) break;
      if (this.refreshQueue.has(id)) ids.push(id);
    }
    for (const id of this.refreshQueue) {
      if (ids.length >= this.settings.refreshBatchMax) break;
      if (!this.waiters.has(id)) ids.push(id);
    }
    if (ids.length === 0) return;
    for (const id of ids) this.refreshQueue.delete(id);
    const startedAt = Date.now();
    const settled = Promise.resolve()
      .then(() => getProfiles(ids))
      .then((answers) => {
        if (answers.length !== ids.length) throw new Error(`a batched read of ${ids.length} profiles returned ${answers.length} answers`);
        const results = new Map<string, Settled>();
        answers.forEach((answer, i) => {
          const id = ids[i]!;
          if ('profile' in answer) {
            // Revalidation only: a customer evicted meanwhile is not brought back.
            this.settle(id, answer.profile, startedAt, true);
            this.unreadable.delete(id);
            results.set(id, { ok: true, value: answer.profile });
          } else {
            // Only this customer's document is bad: its copy is served as stale, the others stay fresh.
            results.set(id, { ok: false, reason: `the profile store could not read this customer: ${answer.error}` });
            this.warnUnreadable(id, answer.error);
          }
        });
        this.markStore(true);
        return results;
      })
      .catch((err: unknown): Settled => {
        this.markStore(false, err);
        return { ok: false, reason: `the profile store failed after ${Date.now() - startedAt} ms: ${errorMessage(err)}` };
      })
      .finally(() => {
        if (this.batch === batch) this.batch = undefined;
        this.scheduleBatch();
      });
    const batch = { ids: new Set(ids), startedAt, settled };
    this.batch = batch;
    this.lastBatchAt = startedAt;
    for (const id of ids) {
      const waiter = this.waiters.get(id);
      if (waiter === undefined) continue;
      this.waiters.delete(id);
      void settled.then((r) => waiter.resolve(resultFor(id, r)));
    }
  }

  /** Once per customer until it is readable again. */
  private warnUnreadable(customerId: string, error: string): void {
    if (this.unreadable.has(customerId)) return;
    if (this.unreadable.size >= 10_000) this.unreadable.clear(); // bounded; at worst some are named again
    this.unreadable.add(customerId);
    this.logger.warn(
      { customerId, error: error.length > 300 ? `${error.slice(0, 300)}...` : error },
      'stored profile cannot be read; serving the cached copy as stale',
    );
  }

  /** Logs the transitions only, so an outage is two lines rather than one per request. */
  private markStore(ok: boolean, err?: unknown): void {
    if (ok && this.storeFailing) {
      this.storeFailing = false;
      this.logger.info('profile store answers again; serving fresh profiles');
    } else if (!ok && !this.storeFailing) {
      this.storeFailing = true;
      this.logger.warn({ error: errorMessage(err) }, 'profile store failing; serving cached profiles as stale');
    }
  }
}

function resultFor(customerId: string, batch: ReadonlyMap<string, Settled> | Settled): Settled {
  if ('ok' in batch) return batch;
  return batch.get(customerId) ?? { ok: false, reason: 'the batched read did not answer for this customer' };
}

async function withDeadline(read: Promise<Settled>, ms: number): Promise<Settled> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<Settled>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, reason: `the profile store did not answer within ${ms} ms` }), ms);
  });
  try {
    return await Promise.race([read, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function errorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
