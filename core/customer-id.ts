/**
 * The one rule for customer ids, shared by the event schema, Firestore profiles,
 * the profile API and webhooks.
 *
 * Customer ids end up in workflow ids (reclassify/<id>), Firestore document ids,
 * URL paths and log lines, so the charset excludes '/', '%', whitespace and
 * quotes, and the document ids Firestore reserves ('.', '..', '__name__') are
 * refused up front rather than failing later inside a write.
 */
import { z } from 'zod';

export const CUSTOMER_ID_MAX_LENGTH = 128;

export const CUSTOMER_ID_PATTERN = /^(?!\.{1,2}$)(?!__.*__$)[A-Za-z0-9_.:@-]{1,128}$/;

/** The rule in words, for error messages ("expected ..."). */
export const CUSTOMER_ID_RULE = "1-128 characters from A-Z a-z 0-9 _ . : @ - (not '.', '..' or __name__)";

export const CustomerIdSchema = z.string().regex(CUSTOMER_ID_PATTERN, { error: CUSTOMER_ID_RULE });

export function isCustomerId(value: unknown): value is string {
  // The length check first keeps hostile 10 kB inputs away from the regex.
  return typeof value === 'string' && value.length <= CUSTOMER_ID_MAX_LENGTH && CUSTOMER_ID_PATTERN.test(value);
}

/** A short, log-safe rendering of an id that failed validation (never the whole 10 kB). */
export function describeInvalidCustomerId(value: unknown): string {
  if (typeof value !== 'string') return `a ${typeof value}`;
  const shown = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  return `${shown} (${value.length} characters)`;
}
