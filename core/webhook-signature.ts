/**
 * Signing and verifying segflow webhooks. Pure: no I/O, no clock unless given one. Every
 * delivery carries `Segflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` and
 * `Segflow-Delivery-Id` (stable across retries, to drop duplicates), where v1 is the HMAC,
 * keyed by the subscriber's secret, of `${t}.${raw request body}`. A receiver verifies the raw
 * bytes before parsing (re-serialised JSON differs), takes `t` and every v1 (unknown keys are
 * ignored; several v1 appear while a secret rotates), rejects a `t` outside its tolerance so an
 * intercepted request cannot be replayed, and compares in constant time; any match accepts.
 * `t` is each attempt's signing time, so a retry hours later still verifies.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'Segflow-Signature';
export const DELIVERY_ID_HEADER = 'Segflow-Delivery-Id';
export const SIGNATURE_SCHEME = 'v1';
export const DEFAULT_TOLERANCE_SECONDS = 300;

type Body = string | Uint8Array;

/** hex(HMAC-SHA256(secret, `${timestamp}.${body}`)). */
export function computeSignature(secret: string, timestamp: number, body: Body): string {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new Error(`webhook signature: expected a timestamp in whole unix seconds, got ${timestamp}`);
  }
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

export interface SignOptions {
  /** Unix seconds; defaults to now. */
  timestamp?: number;
}

/**
 * The Segflow-Signature header value for a body. Pass several secrets while
 * rotating one: the header then carries a v1 for each.
 */
export function signWebhook(secrets: string | readonly string[], body: Body, options: SignOptions = {}): string {
  const list = typeof secrets === 'string' ? [secrets] : secrets;
  if (list.length === 0 || list.some((s) => s.length === 0)) {
    throw new Error('webhook signature: expected at least one non-empty secret');
  }
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  return [`t=${timestamp}`, ...list.map((s) => `${SIGNATURE_SCHEME}=${computeSignature(s, timestamp, body)}`)].join(',');
}

export interface ParsedSignatureHeader {
  timestamp: number;
  signatures: string[];
}

const HEX_SHA256 = /^[0-9a-f]{64}$/;

/** Parse `t=...,v1=...[,v1=...]`; null when the header is not in that form. */
export function parseSignatureHeader(header: string): ParsedSignatureHeader | null {
  if (header.length > 4096) return null;
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) return null;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (timestamp !== undefined || !/^\d{1,15}$/.test(value)) return null;
      timestamp = Number(value);
    } else if (key === SIGNATURE_SCHEME) {
      if (!HEX_SHA256.test(value)) return null;
      signatures.push(value);
    }
  }
  if (timestamp === undefined || signatures.length === 0) return null;
  return { timestamp, signatures };
}

export type VerifyFailure = 'missing_header' | 'malformed_header' | 'timestamp_out_of_tolerance' | 'signature_mismatch';

export type VerifyResult = { ok: true; timestamp: number } | { ok: false; reason: VerifyFailure };

export interface VerifyOptions {
  /** The subscriber's secret(s); any match accepts. */
  secrets: string | readonly string[];
  header: string | undefined | null;
  /** The raw request body exactly as received. */
  body: Body;
  toleranceSeconds?: number;
  /** Unix seconds; defaults to now. */
  now?: number;
}

export function verifyWebhook(options: VerifyOptions): VerifyResult {
  if (options.header === undefined || options.header === null || options.header === '') {
    return { ok: false, reason: 'missing_header' };
  }
  const parsed = parseSignatureHeader(options.header);
  if (parsed === null) return { ok: false, reason: 'malformed_header' };
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(now - parsed.timestamp) > tolerance) return { ok: false, reason: 'timestamp_out_of_tolerance' };

  const secrets = typeof options.secrets === 'string' ? [options.secrets] : options.secrets;
  let matched = false;
  // Check every pair without stopping early, so timing does not say which one matched.
  for (const secret of secrets) {
    const expected = Buffer.from(computeSignature(secret, parsed.timestamp, options.body), 'hex');
    for (const given of parsed.signatures) {
      // Both are 32 bytes: the header parser only accepts 64 hex digits.
      if (timingSafeEqual(expected, Buffer.from(given, 'hex'))) matched = true;
    }
  }
  return matched ? { ok: true, timestamp: parsed.timestamp } : { ok: false, reason: 'signature_mismatch' };
}
