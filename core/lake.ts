/**
 * Layout of the GCS data lake and the records stored in it. Pure functions
 * (hashing and gzip are computations, not I/O), but Node-only: workflow code
 * must not import this file.
 */
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { gunzipSync, gzip, gzipSync } from 'node:zlib';
import type { Event, EventType, RawMessage, Reason } from './events.js';
import { MS_PER_UNIT } from './time.js';

export const LAKE_AREAS = {
  raw: 'raw/events/v1/',
  quarantine: 'quarantine/events/v1/',
} as const;
export type LakeArea = keyof typeof LAKE_AREAS;

/** The Hive-style partition of an instant, in UTC. */
export function partitionOf(instant: Date): { dt: string; hour: string } {
  assertValidDate(instant, 'partitionOf');
  const iso = instant.toISOString();
  return { dt: iso.slice(0, 10), hour: iso.slice(11, 13) };
}

/** Start of the UTC hour containing the instant. */
export function hourStartOf(instant: Date): Date {
  assertValidDate(instant, 'hourStartOf');
  return new Date(Math.floor(instant.getTime() / MS_PER_UNIT.h) * MS_PER_UNIT.h);
}

/** `raw/events/v1/dt=YYYY-MM-DD/hour=HH/`: the prefix an hourly load reads for its data interval. */
export function hourPrefix(intervalStart: Date, area: LakeArea = 'raw'): string {
  assertValidDate(intervalStart, 'hourPrefix');
  if (intervalStart.getTime() % MS_PER_UNIT.h !== 0) {
    throw new Error(
      `hourPrefix: expected a data interval starting on a whole UTC hour, found ${intervalStart.toISOString()}; ` +
        `pass the interval start (e.g. ${hourStartOf(intervalStart).toISOString()})`,
    );
  }
  const { dt, hour } = partitionOf(intervalStart);
  return `${LAKE_AREAS[area]}dt=${dt}/hour=${hour}/`;
}

/**
 * Name of the raw object holding a batch. Derived from the set of message ids
 * (order and duplicates ignored), so a retried write of the same batch lands on
 * the same object instead of duplicating it.
 */
export function rawObjectName(arrival: Date, messageIds: readonly string[]): string {
  return objectName('raw', arrival, messageIds);
}

export function quarantineObjectName(arrival: Date, messageIds: readonly string[]): string {
  return objectName('quarantine', arrival, messageIds);
}

function objectName(area: LakeArea, arrival: Date, messageIds: readonly string[]): string {
  if (messageIds.length === 0) {
    throw new Error(`${area}ObjectName: expected at least one message id, found none; an empty batch has no object`);
  }
  return `${hourPrefix(hourStartOf(arrival), area)}${batchHash(messageIds)}.ndjson.gz`;
}

/** sha256 over the sorted, de-duplicated ids; JSON framing keeps ["a,b"] and ["a","b"] apart. */
export function batchHash(messageIds: readonly string[]): string {
  const ids = [...new Set(messageIds)].sort();
  return createHash('sha256').update(JSON.stringify(ids)).digest('hex');
}

/** Part of a batch that fits one lake object; `oversized` when its single item alone exceeds the limit. */
export interface ObjectPart<T> {
  items: T[];
  bytes: number;
  oversized: boolean;
}

/**
 * Splits a batch's items into parts of at most `maxBytes` each, so no lake object (and no buffer
 * built for one) grows past the limit. Items are packed in message-id order, so the same set of
 * messages always gives the same parts and a retried batch rewrites the same objects. An item that
 * alone exceeds the limit cannot be split: it gets a part of its own, marked `oversized`.
 */
export function splitBySize<T>(
  items: readonly T[],
  idOf: (item: T) => string,
  bytesOf: (item: T) => number,
  maxBytes: number,
): ObjectPart<T>[] {
  if (!Number.isFinite(maxBytes) || maxBytes < 1) {
    throw new Error(`splitBySize: expected a positive byte limit, found ${maxBytes}`);
  }
  const sorted = items
    .map((item) => ({ item, id: idOf(item), bytes: bytesOf(item) }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const parts: ObjectPart<T>[] = [];
  let current: ObjectPart<T> | undefined;
  for (const { item, bytes } of sorted) {
    if (bytes > maxBytes) {
      parts.push({ items: [item], bytes, oversized: true });
      continue;
    }
    if (current === undefined || current.bytes + bytes > maxBytes) {
      current = { items: [], bytes: 0, oversized: false };
      parts.push(current);
    }
    current.items.push(item);
    current.bytes += bytes;
  }
  return parts;
}

export interface ArrivalHourGroup<T> {
  hourStart: Date;
  items: T[];
}

/** Splits a batch by the UTC hour of arrival, hours ascending, items in their original order. */
export function groupByArrivalHour<T>(items: readonly T[], arrivalOf: (item: T) => Date): ArrivalHourGroup<T>[] {
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const start = hourStartOf(arrivalOf(item)).getTime();
    const group = groups.get(start);
    if (group) group.push(item);
    else groups.set(start, [item]);
  }
  return [...groups.entries()].sort(([a], [b]) => a - b).map(([start, grouped]) => ({ hourStart: new Date(start), items: grouped }));
}

// ---------------------------------------------------------------------------
// Records

export interface ArrivalMeta {
  messageId: string;
  publishTime: Date;
  receivedAt: Date;
}

/** One line of a raw NDJSON object. Flat and fixed, so the BigQuery load never meets a new column. */
export interface LakeRecord {
  event_id: string;
  customer_id: string;
  type: EventType;
  /** Event time, normalised to UTC (`...Z`) so records compare and partition as plain strings. */
  ts: string;
  /** The event's properties as a JSON string; new producer fields cannot drift the table schema. */
  properties: string;
  /** Unknown top-level fields as a JSON string, or null; kept rather than dropped. */
  extra: string | null;
  message_id: string;
  publish_time: string;
  received_at: string;
}

const ENVELOPE_FIELDS: ReadonlySet<string> = new Set(['event_id', 'customer_id', 'type', 'ts', 'properties']);

export function toLakeRecord(event: Event, meta: ArrivalMeta): LakeRecord {
  const extraEntries = Object.entries(event).filter(([key]) => !ENVELOPE_FIELDS.has(key));
  return {
    // UUIDs are case-insensitive; one spelling lets downstream dedup compare strings.
    event_id: event.event_id.toLowerCase(),
    customer_id: event.customer_id,
    type: event.type,
    ts: new Date(event.ts).toISOString(),
    properties: JSON.stringify(event.properties),
    extra: extraEntries.length > 0 ? JSON.stringify(Object.fromEntries(extraEntries)) : null,
    message_id: meta.messageId,
    publish_time: meta.publishTime.toISOString(),
    received_at: meta.receivedAt.toISOString(),
  };
}

/** One line of a quarantine object: the message exactly as received, and why it was refused. */
export interface QuarantineRecord {
  message_id: string;
  publish_time: string;
  received_at: string;
  /** Message attributes as a JSON string (arbitrary keys, same reason as LakeRecord.properties). */
  attributes: string;
  size_bytes: number;
  /** The raw bytes, base64: the body may not be UTF-8 or JSON at all. */
  data_base64: string;
  reasons: Array<{ code: string; path: string | null; message: string }>;
}

export function toQuarantineRecord(message: RawMessage, reasons: readonly Reason[], receivedAt: Date): QuarantineRecord {
  if (reasons.length === 0) {
    throw new Error(`toQuarantineRecord: message ${message.messageId} has no reasons; a valid message belongs in raw/`);
  }
  return {
    message_id: message.messageId,
    publish_time: message.publishTime.toISOString(),
    received_at: receivedAt.toISOString(),
    attributes: JSON.stringify(message.attributes),
    size_bytes: message.data.length,
    data_base64: message.data.toString('base64'),
    reasons: reasons.map((r) => ({ code: r.code, path: r.path ?? null, message: r.message })),
  };
}

/** BigQuery schema of the table the raw objects load into (`raw.events`). */
export const RAW_EVENTS_BQ_SCHEMA = [
  { name: 'event_id', type: 'STRING', mode: 'REQUIRED' },
  { name: 'customer_id', type: 'STRING', mode: 'REQUIRED' },
  { name: 'type', type: 'STRING', mode: 'REQUIRED' },
  { name: 'ts', type: 'TIMESTAMP', mode: 'REQUIRED' },
  { name: 'properties', type: 'STRING', mode: 'REQUIRED' },
  { name: 'extra', type: 'STRING', mode: 'NULLABLE' },
  { name: 'message_id', type: 'STRING', mode: 'REQUIRED' },
  { name: 'publish_time', type: 'TIMESTAMP', mode: 'REQUIRED' },
  { name: 'received_at', type: 'TIMESTAMP', mode: 'REQUIRED' },
] as const satisfies ReadonlyArray<{ name: keyof LakeRecord; type: string; mode: string }>;

// ---------------------------------------------------------------------------
// NDJSON + gzip

/**
 * gzip NDJSON. JSON.stringify escapes newlines inside strings, so a hostile
 * value cannot forge a line. Output is byte-stable for equal input (gzip mtime is 0).
 */
export function encodeNdjsonGz(records: readonly object[]): Buffer {
  return gzipSync(encodeNdjson(records));
}

const gzipAsync = promisify(gzip);

/** One NDJSON line (with its newline) for a record: what splitBySize measures and an object holds. */
export function ndjsonLine(record: object): string {
  return `${JSON.stringify(record)}\n`;
}

/**
 * gzip of lines made by ndjsonLine, compressed on the libuv thread pool; for the same records the
 * same bytes as encodeNdjsonGz.
 */
export async function encodeLinesGzAsync(lines: readonly string[]): Promise<Buffer> {
  return gzipAsync(Buffer.from(lines.join(''), 'utf8'));
}

function encodeNdjson(records: readonly object[]): Buffer {
  return Buffer.from(records.map(ndjsonLine).join(''), 'utf8');
}

export function decodeNdjsonGz(data: Buffer): unknown[] {
  const text = gunzipSync(data).toString('utf8');
  const lines = text.split('\n').filter((line) => line !== '');
  return lines.map((line, index) => {
    try {
      return JSON.parse(line) as unknown;
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new Error(`decodeNdjsonGz: expected JSON on line ${index + 1}, found text that does not parse (${detail})`, { cause: error });
    }
  });
}

function assertValidDate(value: Date, where: string): void {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new Error(`${where}: expected a valid Date, found ${String(value)}`);
  }
}
