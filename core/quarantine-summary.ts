/**
 * What the quarantine holds, computed from its records: counts by reason code and by code and path,
 * the most frequent offending values, counts per arrival hour; and a printable sample of messages
 * for one reason (decoded where the bytes are UTF-8 text, hex-escaped where they are not).
 */
import { show } from './events.js';
import type { QuarantineRecord } from './lake.js';

export interface ReasonPathCount {
  code: string;
  path: string | null;
  messages: number;
  /** Most frequent offending values at this path (rendered with show(): escaped, truncated). */
  topValues: Array<{ value: string; messages: number }>;
}

export interface QuarantineSummary {
  from: string;
  to: string;
  objects: number;
  messages: number;
  /** Messages carrying each reason code (a message with two codes counts in both). */
  byReason: Record<string, number>;
  byReasonPath: ReasonPathCount[];
  byHour: Array<{ hour: string; messages: number; byReason: Record<string, number> }>;
  /** Messages recovered by replays from these hours (the recovery ledger). */
  recovered: number;
}

export const TOP_VALUES = 5;

/** The body as JSON, or undefined when it is not UTF-8 JSON. */
function bodyOf(record: QuarantineRecord): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(record.data_base64, 'base64'))) as unknown;
  } catch {
    return undefined;
  }
}

function valueAt(body: unknown, path: string): unknown {
  let v: unknown = body;
  for (const key of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

export function summarizeQuarantine(
  range: { from: string; to: string },
  objects: ReadonlyArray<{ hour: string; records: readonly QuarantineRecord[] }>,
  recovered = 0,
): QuarantineSummary {
  const byReason: Record<string, number> = {};
  const paths = new Map<string, { code: string; path: string | null; messages: number; values: Map<string, number> }>();
  const hours = new Map<string, { messages: number; byReason: Record<string, number> }>();
  let messages = 0;
  for (const { hour, records } of objects) {
    const h = hours.get(hour) ?? { messages: 0, byReason: {} };
    hours.set(hour, h);
    for (const record of records) {
      messages += 1;
      h.messages += 1;
      const body = bodyOf(record);
      for (const code of new Set(record.reasons.map((r) => r.code))) {
        byReason[code] = (byReason[code] ?? 0) + 1;
        h.byReason[code] = (h.byReason[code] ?? 0) + 1;
      }
      const seen = new Set<string>();
      for (const reason of record.reasons) {
        const key = `${reason.code}\u0000${reason.path ?? ''}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const entry = paths.get(key) ?? { code: reason.code, path: reason.path, messages: 0, values: new Map<string, number>() };
        paths.set(key, entry);
        entry.messages += 1;
        if (reason.path !== null && body !== undefined && !reason.path.startsWith('attributes.')) {
          const value = show(valueAt(body, reason.path));
          entry.values.set(value, (entry.values.get(value) ?? 0) + 1);
        }
      }
    }
  }
  return {
    ...range,
    objects: objects.length,
    messages,
    byReason,
    byReasonPath: [...paths.values()]
      .sort((a, b) => b.messages - a.messages || a.code.localeCompare(b.code))
      .map(({ values, ...rest }) => ({
        ...rest,
        topValues: [...values.entries()]
          .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
          .slice(0, TOP_VALUES)
          .map(([value, n]) => ({ value, messages: n })),
      })),
    byHour: [...hours.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([hour, h]) => ({ hour, ...h })),
    recovered,
  };
}

export interface QuarantineSample {
  message_id: string;
  publish_time: string;
  size_bytes: number;
  attributes: string;
  reasons: QuarantineRecord['reasons'];
  /** The body as text when it is UTF-8 (control and bidi characters escaped), else hex-escaped bytes. */
  body: string;
  encoding: 'utf8' | 'bytes';
  truncated: boolean;
}

export const SAMPLE_BODY_CHARS = 2000;

/** A body safe to print on a terminal: text with escapes, or \xNN for bytes that are not UTF-8. */
export function printableBody(data: Buffer, max = SAMPLE_BODY_CHARS): { body: string; encoding: 'utf8' | 'bytes'; truncated: boolean } {
  let text: string;
  let encoding: 'utf8' | 'bytes' = 'utf8';
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    encoding = 'bytes';
    text = [...data]
      .map((b) => (b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`))
      .join('');
  }
  const escaped = text.replace(
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return { body: escaped.slice(0, max), encoding, truncated: escaped.length > max };
}

export function sampleOf(record: QuarantineRecord): QuarantineSample {
  return {
    message_id: record.message_id,
    publish_time: record.publish_time,
    size_bytes: record.size_bytes,
    attributes: printableBody(Buffer.from(record.attributes, 'utf8'), 500).body,
    reasons: record.reasons.map((r) => ({ ...r, message: printableBody(Buffer.from(r.message, 'utf8'), 500).body })),
    ...printableBody(Buffer.from(record.data_base64, 'base64')),
  };
}
