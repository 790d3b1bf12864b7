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
import { TRIGGER_SUBSCRIPTION_FILTER, validateMessage, type RawMessage } from '../core/events.js';
import {
  encodeNdjsonGz,
  groupByArrivalHour,
  quarantineObjectName,
  rawObjectName,
  toLakeRecord,
  toQuarantineRecord,
  type LakeRecord,
  type QuarantineRecord,
} from '../core/lake.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { SubscriptionBuffer } from './pubsub-buffer.js';

export interface IngestBatchInput {
  subscription: string;
  maxMessages: number;
  maxWaitMs: number;
}

export interface IngestBatchResult {
  pulled: number;
  written: number;
  quarantined: number;
  objects: string[];
  /** Publish time of the oldest message in the batch (ISO), for lag. */
  oldestPublishTime?: string;
  finishedAt: string;
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
}

interface Pulled extends RawMessage {
  handle: Message;
}

export function createIngestActivities({ pubsub, storage, config, logger, hooks }: IngestDeps) {
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
        maxBuffered: config.ingest.batchSize * config.ingest.concurrency * 2,
        maxExtensionMinutes: 10,
      });
      buffers.set(subscription, b);
    }
    return b;
  };
  const bucket = storage.bucket(config.lake.bucket);

  async function writeObject(name: string, records: readonly (LakeRecord | QuarantineRecord)[]): Promise<void> {
    await bucket.file(name).save(encodeNdjsonGz(records), {
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

    async ingestBatch({ subscription, maxMessages, maxWaitMs }: IngestBatchInput): Promise<IngestBatchResult> {
      const ctx = Context.current();
      const log = logger.child({ activity: 'ingestBatch', subscription, attempt: ctx.info.attempt });
      const pulled = await bufferFor(subscription).take(maxMessages, maxWaitMs);
      ctx.heartbeat({ stage: 'pulled', count: pulled.length });
      const receivedAt = new Date();
      if (pulled.length === 0) return { pulled: 0, written: 0, quarantined: 0, objects: [], finishedAt: receivedAt.toISOString() };

      const messages: Pulled[] = pulled.map((m) => ({
        handle: m,
        messageId: m.id,
        data: m.data,
        attributes: { ...m.attributes },
        publishTime: new Date(m.publishTime.getTime()),
      }));
      try {
        return await writeAndAck(messages, receivedAt, log);
      } catch (err) {
        // Hand the messages back now rather than when their leases run out.
        for (const m of messages) m.handle.nack();
        throw err;
      }
    },

    /** Stop the streaming subscribers of this worker (at shutdown). */
    async closeIngestSubscribers(): Promise<void> {
      await Promise.all([...buffers.values()].map((b) => b.close()));
      buffers.clear();
    },
  };

  async function writeAndAck(messages: Pulled[], receivedAt: Date, log: Logger): Promise<IngestBatchResult> {
    const ctx = Context.current();
    const valid: Array<{ record: LakeRecord; msg: Pulled }> = [];
    const invalid: Array<{ record: QuarantineRecord; msg: Pulled }> = [];
    const opts = { maxBytes: config.ingest.maxEventBytes, maxFutureSkewMs: config.ingest.maxFutureSkewMs, now: receivedAt };
    for (const msg of messages) {
      const result = validateMessage(msg, opts);
      if (result.ok) {
        valid.push({ msg, record: toLakeRecord(result.event, { messageId: msg.messageId, publishTime: msg.publishTime, receivedAt }) });
      } else {
        invalid.push({ msg, record: toQuarantineRecord(msg, result.reasons, receivedAt) });
      }
    }

    const objects: string[] = [];
    const writes: Array<Promise<void>> = [];
    for (const group of groupByArrivalHour(valid, (v) => v.msg.publishTime)) {
      const name = rawObjectName(group.hourStart, group.items.map((v) => v.msg.messageId));
      objects.push(name);
      writes.push(writeObject(name, group.items.map((v) => v.record)));
    }
    for (const group of groupByArrivalHour(invalid, (v) => v.msg.publishTime)) {
      const name = quarantineObjectName(group.hourStart, group.items.map((v) => v.msg.messageId));
      objects.push(name);
      writes.push(writeObject(name, group.items.map((v) => v.record)));
    }
    await Promise.all(writes);
    ctx.heartbeat({ stage: 'written', objects: objects.length });

    await hooks?.afterWriteBeforeAck?.({ messageIds: messages.map((m) => m.messageId), objects });

    // Only now are the events durable in the lake, so only now may Pub/Sub forget them.
    for (const m of messages) m.handle.ack();
    const oldest = messages.reduce((min, m) => (m.publishTime < min ? m.publishTime : min), messages[0]!.publishTime);
    if (invalid.length > 0) {
      log.warn(
        { quarantined: invalid.length, reasons: summarizeReasons(invalid.map((i) => i.record)) },
        'messages quarantined',
      );
    }
    log.debug({ pulled: messages.length, written: valid.length, quarantined: invalid.length, objects: objects.length }, 'batch ingested');
    return {
      pulled: messages.length,
      written: valid.length,
      quarantined: invalid.length,
      objects,
      oldestPublishTime: oldest.toISOString(),
      finishedAt: new Date().toISOString(),
    };
  }
}

export type IngestActivities = ReturnType<typeof createIngestActivities>;

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
