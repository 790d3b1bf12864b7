/**
 * Reads through an in-process LRU cache of the last good profile per customer.
 *
 * Every request still asks the store (so a recovered Firestore is used again at
 * once, no restart, no circuit to reset), but only waits `latencyBudgetMs` when
 * a cached copy exists; after that, or on an error, the cached copy is served as
 * stale. Without a cached copy there is nothing better to serve, so the read
 * waits up to `uncachedTimeoutMs` before giving up. A store read that finishes
 * after its caller gave up still refreshes the cache.
 */
import { LRUCache } from 'lru-cache';
import type { Logger } from '../core/logger.js';
import type { Profile } from '../core/profile.js';

export interface ProfileStore {
  getProfile(customerId: string): Promise<Profile | null>;
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
   * A copy read from the store less than this long ago is served as fresh without
   * waiting for the store (0 turns this off). Keeps the API's latency off the
   * store's under load; bounded well below the one-second visibility target.
   */
  freshForMs?: number;
  /** A fresh copy older than this is refreshed in the background when served. */
  refreshAfterMs?: number;
}

export const CACHE_DEFAULTS = {
  maxEntries: 50_000,
  maxStaleMs: 24 * 60 * 60 * 1000,
  latencyBudgetMs: 50,
  uncachedTimeoutMs: 1_000,
  freshForMs: 500,
  refreshAfterMs: 100,
} as const satisfies Required<ProfileCacheOptions>;

export type CachedRead =
  | { kind: 'fresh'; profile: Profile }
  | { kind: 'stale'; profile: Profile; cachedAt: number; reason: string }
  | { kind: 'not_found' }
  | { kind: 'unavailable'; reason: string };

interface Entry {
  profile: Profile;
  /** When the read that produced this entry started; orders reads that finish out of order. */
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

  constructor(
    private readonly store: ProfileStore,
    private readonly logger: Logger,
    options: ProfileCacheOptions = {},
  ) {
    this.settings = { ...CACHE_DEFAULTS, ...stripUndefined(options) };
    for (const [k, v] of Object.entries(this.settings)) {
      const min = k === 'freshForMs' || k === 'refreshAfterMs' ? 0 : 1;
      if (!Number.isInteger(v) || v < min) throw new Error(`profile cache: expected ${k} to be a whole number >= ${min}, got ${v}`);
    }
    this.cache = new LRUCache<string, Entry>({ max: this.settings.maxEntries, ttl: this.settings.maxStaleMs, updateAgeOnGet: false });
  }

  get size(): number {
    return this.cache.size;
  }

  async read(customerId: string): Promise<CachedRead> {
    const cached = this.cache.get(customerId);
    if (cached && !this.storeFailing) {
      const age = Date.now() - cached.cachedAt;
      if (age < this.settings.freshForMs) {
        // Revalidate in the background (one read per customer at a time); this request does not wait.
        if (age >= this.settings.refreshAfterMs) void this.storeRead(customerId);
        return { kind: 'fresh', profile: cached.profile };
      }
    }
    const waitMs = cached ? this.settings.latencyBudgetMs : this.settings.uncachedTimeoutMs;
    const outcome = await withDeadline(this.storeRead(customerId), waitMs);
    if (outcome.ok) {
      return outcome.value === null ? { kind: 'not_found' } : { kind: 'fresh', profile: outcome.value };
    }
    // Re-read: a slow store read may have refreshed the entry while we waited.
    const fallback = this.cache.get(customerId) ?? cached;
    if (fallback) return { kind: 'stale', profile: fallback.profile, cachedAt: fallback.cachedAt, reason: outcome.reason };
    return { kind: 'unavailable', reason: outcome.reason };
  }

  private storeRead(customerId: string): Promise<Settled> {
    const now = Date.now();
    const running = this.inflight.get(customerId);
    // Join a read in progress, unless it has hung for longer than anyone waits:
    // then a new one goes out, so the API sees a recovered store within a second.
    if (running && now - running.startedAt < this.settings.uncachedTimeoutMs) return running.settled;
    const startedAt = now;
    const onProfile = (profile: Profile | null): Settled => {
      // A read that hung for a while must not overwrite what a later read found.
      const current = this.cache.get(customerId);
      if (current === undefined || current.readStartedAt <= startedAt) {
        if (profile === null) this.cache.delete(customerId); // erased customers must not live on in the cache
        else this.cache.set(customerId, { profile, readStartedAt: startedAt, cachedAt: Date.now() });
      }
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
