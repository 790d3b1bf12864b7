/**
 * Names and hashes of the forget path (docs/privacy.md). A forgotten customer's id is kept nowhere
 * in clear: the suppression list and the audit records hold a keyed hash (HMAC-SHA256 with
 * SEGFLOW_PRIVACY_SALT), which matches the id when it shows up again but does not reveal it.
 * Node-only (hashing): workflow code must not import this file.
 */
import { createHmac } from 'node:crypto';

/** Firestore collections of the forget path, beside the profiles collection so deployments and tests sharing a project stay apart. */
export function privacyCollections(profilesCollection: string): { suppression: string; requests: string; audit: string } {
  return {
    suppression: `${profilesCollection}__suppressed`,
    requests: `${profilesCollection}__forget_requests`,
    audit: `${profilesCollection}__forget_audit`,
  };
}

/** The keyed hash of a customer id: the suppression list's document id and the audit record's id. */
export function customerIdHash(salt: string, customerId: string): string {
  return createHmac('sha256', salt).update(customerId, 'utf8').digest('hex');
}

/**
 * A request id derived from the set of ids (order and duplicates ignored): asking to forget the
 * same customers again names the same request, so a repeat finds it instead of starting another.
 */
export function forgetRequestId(salt: string, customerIds: readonly string[]): string {
  const ids = [...new Set(customerIds)].sort();
  return `fr-${createHmac('sha256', salt).update(JSON.stringify(ids), 'utf8').digest('hex').slice(0, 20)}`;
}

/** Ids per page of a forget request: one parameter array per DML statement, one Firestore getAll. */
export const FORGET_PAGE_SIZE = 500;

export function pagesOf<T>(items: readonly T[], size: number = FORGET_PAGE_SIZE): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
