/**
 * The suppression list: customers who asked to be forgotten (docs/privacy.md). One Firestore
 * document per customer, keyed by the salted hash of the id (core/privacy.ts), so the list never
 * holds an id in clear. Ingestion, the trigger listener, replays and backfills consult it and drop
 * the events of suppressed customers (counted, never logged one by one, never written).
 *
 * A reader keeps the whole list in memory, kept current by a snapshot listener, so a check is a
 * set lookup. When the listener fails the reader reloads before it answers again, and a check it
 * cannot answer throws: an event is never let through because the list was unreadable.
 */
import type { Firestore } from '@google-cloud/firestore';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { customerIdHash, pagesOf, privacyCollections } from '../core/privacy.js';

export interface SuppressionDeps {
  firestore: Firestore;
  config: Pick<Config, 'firestore' | 'privacy'>;
  logger: Logger;
}

export interface SuppressResult {
  added: number;
  alreadySuppressed: number;
}

export interface FilterResult<T> {
  kept: T[];
  /** Items dropped because their customer is suppressed. */
  dropped: number;
}

export interface SuppressionList {
  /** Adds the ids (stored as hashes); idempotent. */
  suppress(customerIds: readonly string[], requestId: string): Promise<SuppressResult>;
  /** Which of the ids are on the list, read from Firestore now (not the cache): for verification. */
  suppressedNow(customerIds: readonly string[]): Promise<Set<string>>;
  /** Drops the items whose customer is suppressed. Loads the list first if needed; throws when it cannot be read. */
  filter<T>(items: readonly T[], customerIdOf: (item: T) => string | undefined): Promise<FilterResult<T>>;
  /** Stops the snapshot listener. */
  close(): void;
}

export function createSuppressionList({ firestore, config, logger }: SuppressionDeps): SuppressionList {
  const salt = config.privacy.salt;
  const collection = firestore.collection(privacyCollections(config.firestore.profiles).suppression);
  const log = logger.child({ component: 'suppression', collection: collection.id });
  let hashes: Set<string> | undefined;
  let unsubscribe: (() => void) | undefined;
  let loading: Promise<void> | undefined;

  function watch(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let first = true;
      unsubscribe = collection.onSnapshot(
        (snap) => {
          const next = hashes !== undefined && !first ? hashes : new Set<string>();
          if (first) for (const doc of snap.docs) next.add(doc.id);
          else
            for (const change of snap.docChanges()) {
              if (change.type === 'removed') next.delete(change.doc.id);
              else next.add(change.doc.id);
            }
          hashes = next;
          if (first) {
            first = false;
            resolve();
          }
        },
        (err) => {
          // Until a new listener has loaded the list, checks wait for it (fail closed).
          hashes = undefined;
          unsubscribe = undefined;
          loading = undefined;
          log.warn({ error: err.message }, 'suppression list listener failed; the next check reloads it');
          if (first) reject(err);
        },
      );
    });
  }

  async function current(): Promise<Set<string>> {
    if (hashes === undefined) {
      loading ??= watch().catch((err: unknown) => {
        loading = undefined;
        throw err;
      });
      await loading;
    }
    return hashes!;
  }

  return {
    async suppress(customerIds, requestId) {
      let added = 0;
      let alreadySuppressed = 0;
      for (const page of pagesOf([...new Set(customerIds)])) {
        const refs = page.map((id) => collection.doc(customerIdHash(salt, id)));
        const snaps = await firestore.getAll(...refs);
        const batch = firestore.batch();
        snaps.forEach((snap, i) => {
          if (snap.exists) alreadySuppressed += 1;
          else {
            added += 1;
            batch.set(refs[i]!, { request_id: requestId, suppressed_at: new Date().toISOString() });
          }
        });
        await batch.commit();
      }
      hashes = undefined; // the next check reads the list including these, whatever the listener's delay
      unsubscribe?.();
      unsubscribe = undefined;
      loading = undefined;
      return { added, alreadySuppressed };
    },

    async suppressedNow(customerIds) {
      const out = new Set<string>();
      for (const page of pagesOf([...new Set(customerIds)])) {
        const snaps = await firestore.getAll(...page.map((id) => collection.doc(customerIdHash(salt, id))));
        snaps.forEach((snap, i) => {
          if (snap.exists) out.add(page[i]!);
        });
      }
      return out;
    },

    async filter(items, customerIdOf) {
      const list = await current();
      if (list.size === 0) return { kept: [...items], dropped: 0 };
      const kept: (typeof items)[number][] = [];
      const memo = new Map<string, boolean>();
      for (const item of items) {
        const id = customerIdOf(item);
        if (id === undefined) {
          kept.push(item);
          continue;
        }
        let hit = memo.get(id);
        if (hit === undefined) memo.set(id, (hit = list.has(customerIdHash(salt, id))));
        if (!hit) kept.push(item);
      }
      return { kept, dropped: items.length - kept.length };
    },

    close() {
      unsubscribe?.();
      unsubscribe = undefined;
    },
  };
}

/**
 * For replays and backfills of lake data: the records of suppressed customers removed, and how many
 * were. Records without a readable customer id are kept (a quarantined body that is not JSON).
 */
export async function dropSuppressed<T>(
  list: SuppressionList,
  records: readonly T[],
  customerIdOf: (record: T) => string | undefined,
): Promise<FilterResult<T>> {
  return list.filter(records, customerIdOf);
}

/** The customer id inside a raw message body (JSON with a string `customer_id`), if any: quarantined messages too. */
export function customerIdOfBody(data: Buffer | string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
    const id = (parsed as { customer_id?: unknown } | null)?.customer_id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}
