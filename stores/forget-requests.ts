/**
 * Forget requests and their audit records (docs/privacy.md), in Firestore.
 *
 * A request's ids are stored in pages under `<requests>/<requestId>/pages/<n>`, so the forget
 * workflow's input and history carry only the request id; the pages are deleted when the request
 * ends. The audit record (`<audit>/<requestId>`) stays: who asked, when, what was removed where,
 * the ids as salted hashes only.
 */
import type { Firestore } from '@google-cloud/firestore';
import type { Config } from '../core/config.js';
import { customerIdHash, pagesOf, privacyCollections } from '../core/privacy.js';

export interface ForgetRequestMeta {
  request_id: string;
  customers: number;
  pages: number;
  note: string;
  requested_by: string;
  requested_at: string;
  dry_run: boolean;
}

/** The audit record: counts and hashes, no personal data. */
export interface ForgetAuditRecord {
  request_id: string;
  workflow_id: string;
  dry_run: boolean;
  note: string;
  requested_by: string;
  requested_at: string;
  completed_at: string;
  /** HMAC-SHA256 of each id with SEGFLOW_PRIVACY_SALT. */
  customer_hashes: string[];
  customers: number;
  /** Per store: what was found and removed (or, for a dry run, would be). */
  stores: Record<string, Record<string, number>>;
  /** What a search of every store after the request found of the ids (all zero when done). */
  verification: Record<string, number>;
  verified: boolean;
}

export function createForgetRequestStore({ firestore, config }: { firestore: Firestore; config: Pick<Config, 'firestore' | 'privacy'> }) {
  const names = privacyCollections(config.firestore.profiles);
  const requests = firestore.collection(names.requests);
  const audit = firestore.collection(names.audit);

  return {
    /** Stores the request's ids in pages; writing the same request again rewrites the same documents. */
    async createRequest(meta: Omit<ForgetRequestMeta, 'pages' | 'customers'>, customerIds: readonly string[]): Promise<ForgetRequestMeta> {
      const pages = pagesOf([...new Set(customerIds)].sort());
      const full: ForgetRequestMeta = { ...meta, customers: pages.reduce((n, p) => n + p.length, 0), pages: pages.length };
      const doc = requests.doc(meta.request_id);
      for (const [i, ids] of pages.entries()) await doc.collection('pages').doc(String(i)).set({ ids });
      await doc.set(full);
      return full;
    },

    async requestMeta(requestId: string): Promise<ForgetRequestMeta | undefined> {
      const snap = await requests.doc(requestId).get();
      return snap.exists ? (snap.data() as ForgetRequestMeta) : undefined;
    },

    /** The ids of one page; throws when the request or the page is gone (erased or never stored). */
    async pageIds(requestId: string, page: number): Promise<string[]> {
      const snap = await requests.doc(requestId).collection('pages').doc(String(page)).get();
      if (!snap.exists) {
        throw new Error(
          `forget request ${requestId}: page ${page} not found; the request was erased or never stored (start it with ops forget)`,
        );
      }
      return (snap.data() as { ids: string[] }).ids;
    },

    async allIds(requestId: string): Promise<string[]> {
      const meta = await this.requestMeta(requestId);
      if (meta === undefined) throw new Error(`forget request ${requestId} not found`);
      const out: string[] = [];
      for (let p = 0; p < meta.pages; p++) out.push(...(await this.pageIds(requestId, p)));
      return out;
    },

    hashes(customerIds: readonly string[]): string[] {
      return customerIds.map((id) => customerIdHash(config.privacy.salt, id)).sort();
    },

    /** Deletes the request's ids (the audit record keeps their hashes). Idempotent. */
    async eraseRequest(requestId: string): Promise<void> {
      const doc = requests.doc(requestId);
      await firestore.recursiveDelete(doc);
    },

    async writeAudit(record: ForgetAuditRecord): Promise<void> {
      await audit.doc(record.request_id).set(record);
    },

    async readAudit(requestId: string): Promise<ForgetAuditRecord | undefined> {
      const snap = await audit.doc(requestId).get();
      return snap.exists ? (snap.data() as ForgetAuditRecord) : undefined;
    },
  };
}

export type ForgetRequestStore = ReturnType<typeof createForgetRequestStore>;
