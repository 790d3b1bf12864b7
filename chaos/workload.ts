/**
 * What the chaos run publishes, and how it publishes through an outage.
 *
 * The bulk workload is the ingestion tests' (test/support/ingest-fixtures.ts):
 * persona events, duplicate publishes and every kind of malformed message, plus
 * valid events carrying hostile strings in every free-text place the contract
 * allows (order ids, click elements, unknown properties, unknown top-level
 * fields, attributes). The real-time stream is purchases for customers of its
 * own, some published twice, that move customers between segments.
 */
import type { Topic } from '@google-cloud/pubsub';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EventInput } from '../core/events.js';
import { HOSTILE_STRINGS } from '../demo/personas.js';
import { createRng, type Rng } from '../core/random.js';
import { eventMessage, type OutgoingMessage } from '../scripts/lib/publisher.js';
import { buildWorkload, type Workload } from '../test/support/ingest-fixtures.js';

/** Hostile strings small enough for one event (the 100 kB one is the too_large quarantine case). */
const SMALL_HOSTILE = HOSTILE_STRINGS.filter((s) => s.length <= 1_000);
/**
 * Pub/Sub refuses a publish request whose attributes are not valid UTF-8 (the emulator fails the
 * whole batch with UNKNOWN), so a lone surrogate can only travel in the message body.
 */
const ATTRIBUTE_SAFE_HOSTILE = SMALL_HOSTILE.filter((s) => Buffer.from(s, 'utf8').toString('utf8') === s && !s.includes('\u0000'));

export interface ChaosWorkload {
  /** Bulk messages in publish order; `wave` splits them around the Pub/Sub outage. */
  bulk: OutgoingMessage[];
  /** Real-time purchases (each message once; duplicates are in the list as repeats). */
  realtime: OutgoingMessage[];
  /** Lower-case event ids of every distinct valid event (bulk, hostile and real-time). */
  validIds: Set<string>;
  malformed: Workload['malformed'];
  /** Valid events published more than once on purpose. */
  duplicatePublishes: number;
  hostile: Array<{ eventId: string; properties: Record<string, unknown> }>;
  realtimeCustomers: string[];
}

export function buildChaosWorkload(opts: {
  events: number;
  seed: number;
  maxBytes: number;
  realtimeCustomers: number;
  now?: Date;
}): ChaosWorkload {
  const now = opts.now ?? new Date();
  const rng = createRng(opts.seed ^ 0x5eed);
  const nHostile = Math.max(10, Math.round(opts.events * 0.01));
  const nRealtime = opts.realtimeCustomers * 3;
  const nPersona = Math.max(100, opts.events - nHostile - nRealtime);
  const base = buildWorkload({
    events: nPersona,
    malformedShare: 0.03,
    duplicateShare: 0.02,
    days: 30,
    seed: opts.seed,
    maxBytes: opts.maxBytes,
    now,
  });

  const hostile: ChaosWorkload['hostile'] = [];
  const hostileMessages: OutgoingMessage[] = [];
  for (let i = 0; i < nHostile; i++) {
    const event = hostileEvent(rng, i, now);
    hostile.push({ eventId: event.event_id.toLowerCase(), properties: event.properties as Record<string, unknown> });
    const msg = eventMessage(event);
    // Free-form attributes travel with the message; only type, event_id and schema are read.
    // Attribute values are protobuf strings: only well-formed Unicode can be sent at all.
    msg.attributes.x_note = ATTRIBUTE_SAFE_HOSTILE[i % ATTRIBUTE_SAFE_HOSTILE.length]!;
    hostileMessages.push(msg);
  }
  const bulk = [...base.messages];
  for (const m of hostileMessages) bulk.splice(rng.int(0, bulk.length), 0, m);

  const realtimeCustomers = Array.from({ length: opts.realtimeCustomers }, (_, i) => `rt-${opts.seed}-${String(i).padStart(4, '0')}`);
  const realtime: OutgoingMessage[] = [];
  const rtIds: string[] = [];
  let rtDuplicates = 0;
  for (const customerId of realtimeCustomers) {
    // One to four purchases, small or large: customers cross the Occasional/VIP line both ways over time.
    const n = rng.int(1, 4);
    for (let k = 0; k < n && rtIds.length < nRealtime; k++) {
      const amount = rng.chance(0.4) ? 400 + rng.int(0, 2000) : 5 + rng.int(0, 60);
      const event: EventInput = {
        event_id: randomUuid(rng),
        customer_id: customerId,
        type: 'purchase',
        ts: new Date(now.getTime() - rng.int(1_000, 600_000)).toISOString(),
        properties: {
          order_id:
            k === 0 && rng.chance(0.2)
              ? `${SMALL_HOSTILE[rng.int(0, SMALL_HOSTILE.length - 1)]!.slice(0, 100)}#${customerId}`
              : `o-${rng.hex(12)}`,
          amount,
          currency: 'USD',
        },
      };
      const msg = eventMessage(event);
      rtIds.push(event.event_id.toLowerCase());
      realtime.push(msg);
      if (rng.chance(0.1)) {
        realtime.push(msg);
        rtDuplicates++;
      }
    }
  }
  const validIds = new Set([...base.validIds, ...hostile.map((h) => h.eventId), ...rtIds]);
  return {
    bulk,
    realtime,
    validIds,
    malformed: base.malformed,
    duplicatePublishes: base.duplicates + rtDuplicates,
    hostile,
    realtimeCustomers,
  };
}

function randomUuid(rng: Rng): string {
  return rng.uuid();
}

/** A valid event with hostile strings wherever the contract takes free text. */
function hostileEvent(rng: Rng, i: number, now: Date): EventInput {
  const s = (k: number) => SMALL_HOSTILE[(i + k) % SMALL_HOSTILE.length]!;
  const ts = new Date(now.getTime() - rng.int(60_000, 20 * 86_400_000)).toISOString();
  const free = {
    note: s(1),
    nested: { level1: { level2: { value: s(2), list: [s(3), { k: s(4) }] } } },
    [`weird key ${s(5).slice(0, 20)}`]: s(6),
  };
  const customer_id = `hostile-${i % 25}`;
  const extra = { x_note: s(7) };
  switch (i % 3) {
    case 0:
      return {
        event_id: rng.uuid(),
        customer_id,
        type: 'click',
        ts,
        properties: { url: 'https://shop.example/search?q=%27%3B%20DROP%20TABLE', element: s(0).slice(0, 256), ...free },
        ...extra,
      };
    case 1:
      return {
        event_id: rng.uuid(),
        customer_id,
        type: 'purchase',
        ts,
        properties: { order_id: `${s(0).slice(0, 100)}#${i}`, amount: 10 + (i % 90), currency: 'EUR', ...free },
        ...extra,
      };
    default:
      return {
        event_id: rng.uuid(),
        customer_id,
        type: 'page_view',
        ts,
        properties: { url: `https://shop.example/p/${i}?ref=%7B%7B%20x%20%7D%7D`, duration_ms: 1000 + i, ...free },
        ...extra,
      };
  }
}

// ---------------------------------------------------------------- publishing

export interface PublishReport {
  /** Pub/Sub message ids in input order (of the attempt that succeeded). */
  ids: string[];
  /** Publish attempts that failed and were tried again. */
  retries: number;
  /** Longest time one message took from first attempt to success. */
  maxRetryMs: number;
}

/**
 * Publishes every message, retrying each failed publish with backoff until it
 * succeeds or `deadlineMs` passes (then throws, naming how many are missing).
 * A retried publish whose first attempt did reach Pub/Sub is a duplicate
 * delivery of the same event (same event_id), which staging removes; that is
 * the publisher's at-least-once contract, the same as Pub/Sub's own.
 */
export async function publishResilient(
  topic: Topic,
  messages: readonly OutgoingMessage[],
  opts: { inFlight?: number; deadlineMs?: number; onProgress?: (done: number) => void } = {},
): Promise<PublishReport> {
  const inFlight = opts.inFlight ?? 1000;
  const deadline = Date.now() + (opts.deadlineMs ?? 600_000);
  const ids: string[] = new Array<string>(messages.length);
  let retries = 0;
  let maxRetryMs = 0;
  let done = 0;
  let next = 0;
  let lastError = '';
  async function one(i: number): Promise<void> {
    const msg = messages[i]!;
    const t0 = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        ids[i] = await topic.publishMessage({ data: msg.data, attributes: msg.attributes });
        if (attempt > 0) maxRetryMs = Math.max(maxRetryMs, Date.now() - t0);
        done++;
        if (done % 5000 === 0) opts.onProgress?.(done);
        return;
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
        if (Date.now() > deadline) throw new Error(`publish of message ${i} still failing at the deadline: ${lastError}`, { cause: err });
        retries++;
        await sleep(Math.min(2_000, 100 * 2 ** Math.min(attempt, 5)));
      }
    }
  }
  const workers = Array.from({ length: Math.min(inFlight, messages.length) }, async () => {
    while (next < messages.length) await one(next++);
  });
  const results = await Promise.allSettled(workers);
  await topic.flush().catch(() => undefined);
  const failed = results.filter((r) => r.status === 'rejected');
  if (failed.length > 0) {
    throw new Error(
      `${messages.length - done} of ${messages.length} messages could not be published before the deadline; last error: ${lastError}`,
    );
  }
  return { ids, retries, maxRetryMs };
}
