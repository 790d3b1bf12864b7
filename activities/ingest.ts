/**
 * Ingestion activities: pull a batch from the lake subscription, validate it,
 * write valid events to raw/ and invalid messages to quarantine/ as gzip NDJSON
 * objects named after the batch's message ids, and ack only after both writes
 * are durable. A retried batch rewrites the same objects instead of adding copies;
 * a message redelivered in a different batch is removed by staging's dedup on
 * event_id, so the warehouse counts it once.
 */
import type { Message, PubSub } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import { Context } from '@temporalio/activity';
import { TRIGGER_SUBSCRIPTION_FILTER, type RawMessage } from '../core/events.js';
import { createEventValidator } from '../core/event-validator.js';
import {
  encodeLinesGzAsync,
  groupByArrivalHour,
  ndjsonLine,
  quarantineObjectName,
  rawObjectName,
  splitBySize,
  toLakeRecord,
  toQuarantineRecord,
  type LakeRecord,
  type QuarantineRecord,
} from '../core/lake.js';
import type { Config } from '../core/config.js';
import type { IngestAlertSettings } from '../core/ingest-alerts.js';
import type { Logger } from '../core/logger.js';
import { heartbeat } from './heartbeat.js';
import { createRepeatedLog } from '../core/repeated-log.js';
import { createReasonTally } from '../core/reason-tally.js';
import { SubscriptionBuffer } from './pubsub-buffer.js';
import { customerIdOfBody, type SuppressionList } from '../stores/suppression.js';

const OBJECT_NAMES_REPORTED = 20;

export interface IngestBatchInput {
  subscription: string;
  /** Messages per batch: a batch is validated, written and acked as one unit. */
  maxMessages: number;
  /** Longest a batch waits to fill; a batch that finds nothing in this time ends the activity. */
  maxWaitMs: number;
  /** Keep taking batches while messages flow, for up to this long (0: one batch). Default: config. */
  runForMs?: number;
  /** Batches being validated and written at once while the next is pulled. Default: config. */
  writesInFlight?: number;
}

export interface IngestBatchResult {
  /** Messages written and acked by this activity, over all its batches. */
  pulled: number;
  written: number;
  quarantined: number;
  /** Names of the objects written: the first OBJECT_NAMES_REPORTED of them (results go into the workflow's history). */
  objects: string[];
  /** Objects written. Absent from results of older workers, which listed them all in `objects`. */
  objectCount?: number;
  /** Batches written and acked (each one write-then-ack unit). Absent from results of older workers. */
  batches?: number;
  /** Publish time of the oldest message of the last batch (ISO), for lag. */
  oldestPublishTime?: string;
  /** When the last batch was acked (or when the activity gave up waiting, if it took none). */
  finishedAt: string;
  /** Messages of suppressed (forgotten) customers: acked and dropped, never written. Absent when none. */
  suppressed?: number;
  /** Quarantine reason codes over all batches, and how many messages carried each. */
  reasons?: Record<string, number>;
  /**
   * A batch failed after others of this activity succeeded: its messages were handed back to
   * Pub/Sub (nack) and the activity stopped. When no batch succeeded the activity throws instead.
   */
  failedBatch?: string;
}

/** Points where a test can make the activity fail as if the worker crashed there. */
export interface IngestHooks {
  afterWriteBeforeAck?: (batch: { messageIds: string[]; objects: string[] }) => void | Promise<void>;
}

export interface IngestDeps {
  pubsub: PubSub;
  storage: Storage;
  config: Config;
  logger: Logger;
  hooks?: IngestHooks;
  /** Forgotten customers (stores/suppression.ts): their events are dropped before the lake. */
  suppression?: SuppressionList;
}

interface Pulled extends RawMessage {
  handle: Message;
}

export function createIngestActivities({ pubsub, storage, config, logger, hooks, suppression }: IngestDeps) {
  // A bad producer or a failing store hits batch after batch: one report per cause, then a count.
  const repeated = createRepeatedLog(logger.child({ activity: 'ingestBatch' }));
  // Quarantined messages are reported as counts per reason over an interval, not per batch or message.
  const quarantineTally = createReasonTally(logger.child({ activity: 'ingestBatch' }), 'messages quarantined');
  // One streaming subscriber per subscription and worker, shared by all its batches.
  const buffers = new Map<string, SubscriptionBuffer>();
  const bufferFor = (subscription: string) => {
    let b = buffers.get(subscription);
    if (b?.broken) {
      // The last stream died (for example the subscription did not exist yet): start a new one.
      void b.close().catch(() => undefined);
      b = undefined;
    }
    if (!b) {
      b = new SubscriptionBuffer(pubsub, subscription, {
        maxBuffered: leasedMessagesLimit(config.ingest),
        maxBufferedBytes: leasedBytesLimit(config.ingest),
        maxExtensionMinutes: 10,
        // The lease the subscription was created with (SEGFLOW_INGEST_ACK_DEADLINE_S).
        minAckDeadlineSeconds: config.ingest.ackDeadlineS,
      });
      buffers.set(subscription, b);
    }
    return b;
  };
  const bucket = storage.bucket(config.lake.bucket);
  const validator = createEventValidator(config.ingest);

  async function writeObject(name: string, lines: readonly string[]): Promise<void> {
    // Compressed on the libuv thread pool, so the next batch is validated meanwhile.
    await bucket.file(name).save(await encodeLinesGzAsync(lines), {
      resumable: false,
      contentType: 'application/x-ndjson',
      metadata: { contentEncoding: 'gzip' },
      // Stored as gzip bytes; clients must not transcode on read.
      gzip: false,
    });
  }

  return {
    /** Create the topic, both subscriptions and the lake bucket if they are missing. */
    async ensureIngestResources(): Promise<{ topic: string; subscriptions: string[]; bucket: string }> {
      const [topic] = await pubsub.topic(config.pubsub.topic).get({ autoCreate: true });
      const subs = [
        { name: config.pubsub.lakeSubscription, options: { ackDeadlineSeconds: config.ingest.ackDeadlineS } },
        {
          name: config.pubsub.triggerSubscription,
          // The emulator stores the filter but does not apply it; consumers check the type too.
          options: { ackDeadlineSeconds: 30, filter: TRIGGER_SUBSCRIPTION_FILTER },
        },
      ];
      for (const { name, options } of subs) {
        const [exists] = await pubsub.subscription(name).exists();
        if (!exists) await topic.createSubscription(name, options).catch(ignoreAlreadyExists);
      }
      const [bucketExists] = await bucket.exists();
      if (!bucketExists) await storage.createBucket(config.lake.bucket).catch(ignoreAlreadyExists);
      return { topic: topic.name, subscriptions: subs.map((s) => s.name), bucket: config.lake.bucket };
    },

    /**
     * Pulls batches from the subscription's buffer and writes them, pipelined: while up to
     * `writesInFlight` batches are validated, compressed and written, the stream keeps filling the
     * buffer and the next batch is taken. Each batch is acked only after its own objects are
     * written. Keeps going while messages flow, up to `runForMs`, so the cost of scheduling an
     * activity is paid once per many batches rather than once per batch.
     */
    async ingestBatch(input: IngestBatchInput): Promise<IngestBatchResult> {
      const { subscription, maxMessages, maxWaitMs } = input;
      const runForMs = input.runForMs ?? config.ingest.runForMs;
      const writesInFlight = Math.max(1, input.writesInFlight ?? config.ingest.writesInFlight);
      const ctx = Context.current();
      const log = logger.child({ activity: 'ingestBatch', subscription, attempt: ctx.info.attempt });
      const buffer = bufferFor(subscription);
      // In use until the last batch of this activity is written: an idle buffer releases its leases.
      const done = buffer.use();
      try {
        const deadline = Date.now() + runForMs;
        const total: IngestBatchResult = {
          pulled: 0,
          written: 0,
          quarantined: 0,
          objects: [],
          objectCount: 0,
          batches: 0,
          finishedAt: new Date().toISOString(),
        };
        const inFlight = new Set<Promise<void>>();
        let failure: unknown;

        for (;;) {
          heartbeat({ stage: 'pulling', batches: total.batches, pulled: total.pulled });
          const pulled = await buffer.take(maxMessages, maxWaitMs, config.ingest.batchMaxBytes);
          if (pulled.length === 0) break;
          const messages: Pulled[] = pulled.map((m) => ({
            handle: m,
            messageId: m.id,
            data: m.data,
            attributes: { ...m.attributes },
            publishTime: new Date(m.publishTime.getTime()),
          }));
          const write: Promise<void> = writeAndAck(messages, log)
            .then((r) => {
              total.pulled += r.pulled;
              total.written += r.written;
              total.quarantined += r.quarantined;
              if (r.suppressed) total.suppressed = (total.suppressed ?? 0) + r.suppressed;
              total.objects.push(...r.objects.slice(0, OBJECT_NAMES_REPORTED - total.objects.length));
              total.objectCount! += r.objects.length;
              total.batches! += 1;
              for (const [code, n] of Object.entries(r.reasons ?? {})) (total.reasons ??= {})[code] = (total.reasons[code] ?? 0) + n;
              total.oldestPublishTime = r.oldestPublishTime;
              total.finishedAt = r.finishedAt;
              heartbeat({ stage: 'written', batches: total.batches, pulled: total.pulled });
            })
            .catch((err: unknown) => {
              // Hand the messages back now rather than when their leases run out.
              for (const m of messages) m.handle.nack();
              failure ??= err;
            })
            .finally(() => inFlight.delete(write));
          inFlight.add(write);
          if (inFlight.size >= writesInFlight) await Promise.race(inFlight);
          if (failure !== undefined || Date.now() >= deadline || ctx.cancellationSignal.aborted) break;
        }
        await Promise.all(inFlight);

        if (failure !== undefined) {
          if (total.batches === 0) throw failure;
          // The acked batches must reach the workflow's counters; the failed one is redelivered.
          total.failedBatch = failure instanceof Error ? failure.message : String(failure);
          const msg = 'an ingestion batch failed after others succeeded; its messages were nacked';
          repeated.log('warn', `batch failed: ${total.failedBatch}`, { err: failure, batches: total.batches }, msg, log);
        }
        if (total.batches === 0) total.finishedAt = new Date().toISOString();
        return total;
      } finally {
        done();
      }
    },

    /** The alert thresholds of this worker's configuration, for the ingestEvents workflow. */
    async ingestAlertSettings(): Promise<IngestAlertSettings> {
      return { ...config.ingest.alerts };
    },

    /** Stop the streaming subscribers of this worker (at shutdown). */
    async closeIngestSubscribers(): Promise<void> {
      await Promise.all([...buffers.values()].map((b) => b.close()));
      buffers.clear();
      quarantineTally.close();
    },
  };

  async function writeAndAck(messages: Pulled[], log: Logger): Promise<IngestBatchResult> {
    const receivedAt = new Date();
    let valid: Array<{ record: LakeRecord; msg: Pulled }> = [];
    let invalid: Array<{ record: QuarantineRecord; msg: Pulled }> = [];
    for (const msg of messages) {
      const result = validator.validate(msg, receivedAt);
      if (result.ok) {
        valid.push({ msg, record: toLakeRecord(result.event, { messageId: msg.messageId, publishTime: msg.publishTime, receivedAt }) });
      } else {
        invalid.push({ msg, record: toQuarantineRecord(msg, result.reasons, receivedAt) });
      }
    }

    let suppressed = 0;
    if (suppression) {
      // Counted, not logged: a forgotten customer's id must not reach the logs either.
      const v = await suppression.filter(valid, (e) => e.record.customer_id);
      const q = await suppression.filter(invalid, (e) => customerIdOfBody(e.msg.data));
      valid = v.kept;
      invalid = q.kept;
      suppressed = v.dropped + q.dropped;
    }

    const objects: string[] = [];
    const writes: Array<Promise<void>> = [];
    const areas: Array<{ entries: ReadonlyArray<{ record: object; msg: Pulled }>; nameOf: typeof rawObjectName }> = [
      { entries: valid, nameOf: rawObjectName },
      { entries: invalid, nameOf: quarantineObjectName },
    ];
    for (const { entries, nameOf } of areas) {
      for (const group of groupByArrivalHour(entries, (v) => v.msg.publishTime)) {
        const lines = group.items.map((v) => ({ id: v.msg.messageId, line: ndjsonLine(v.record) }));
        // A batch bigger than an object may be is split; each part is named after its own ids.
        const parts = splitBySize(
          lines,
          (l) => l.id,
          (l) => Buffer.byteLength(l.line),
          config.lake.objectMaxBytes,
        );
        for (const part of parts) {
          const name = nameOf(
            group.hourStart,
            part.items.map((l) => l.id),
          );
          if (part.oversized) {
            const msg = 'one record exceeds the lake object size limit; written alone';
            repeated.log('warn', 'oversized record', { object: name, bytes: part.bytes, limit: config.lake.objectMaxBytes }, msg, log);
          }
          objects.push(name);
          writes.push(
            writeObject(
              name,
              part.items.map((l) => l.line),
            ),
          );
        }
      }
    }
    await Promise.all(writes);

    await hooks?.afterWriteBeforeAck?.({ messageIds: messages.map((m) => m.messageId), objects });

    // Only now are the events durable in the lake, so only now may Pub/Sub forget them.
    for (const m of messages) m.handle.ack();
    const oldest = messages.reduce((min, m) => (m.publishTime < min ? m.publishTime : min), messages[0]!.publishTime);
    const reasons = invalid.length > 0 ? summarizeReasons(invalid.map((i) => i.record)) : undefined;
    for (const { record } of invalid) {
      quarantineTally.add(
        record.reasons.map((r) => r.code),
        { messageId: record.message_id },
      );
    }
    log.debug({ pulled: messages.length, written: valid.length, quarantined: invalid.length, objects: objects.length }, 'batch ingested');
    return {
      pulled: messages.length,
      written: valid.length,
      quarantined: invalid.length,
      objects,
      ...(suppressed > 0 ? { suppressed } : {}),
      oldestPublishTime: oldest.toISOString(),
      finishedAt: new Date().toISOString(),
      ...(reasons ? { reasons } : {}),
    };
  }
}

export type IngestActivities = ReturnType<typeof createIngestActivities>;

/**
 * Flow control of the streaming subscriber: messages leased at once. Leased are the batches being
 * written, the next batch of each activity, and acked messages until the client flushes its acks
 * (every 100 ms), so room for one more batch per activity keeps the stream from pausing.
 */
export function leasedMessagesLimit(ingest: Pick<Config['ingest'], 'batchSize' | 'concurrency' | 'writesInFlight'>): number {
  return ingest.batchSize * ingest.concurrency * (ingest.writesInFlight + 2);
}

/** The same in bytes of message data: bounds the memory a worker's ingestion holds. */
export function leasedBytesLimit(ingest: Pick<Config['ingest'], 'batchMaxBytes' | 'concurrency' | 'writesInFlight'>): number {
  return ingest.batchMaxBytes * ingest.concurrency * (ingest.writesInFlight + 2);
}

function summarizeReasons(records: readonly QuarantineRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) for (const reason of r.reasons) counts[reason.code] = (counts[reason.code] ?? 0) + 1;
  return counts;
}

function ignoreAlreadyExists(err: unknown): void {
  const code = (err as { code?: number }).code;
  // 6 = gRPC ALREADY_EXISTS, 409 = HTTP conflict: another worker created it first.
  if (code !== 6 && code !== 409) throw err;
}
