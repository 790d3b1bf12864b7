/**
 * Ingestion activities: pull a batch from the lake subscription, validate it,
 * write valid events to raw/ and invalid messages to quarantine/ as gzip NDJSON
 * objects named after the batch's message ids, and ack only after both writes
 * are durable. A retried batch rewrites the same objects instead of adding copies;
 * a message redelivered in a different batch is removed by staging's dedup on
 * event_id, so the warehouse counts it once.
 */
import { v1, type PubSub } from '@google-cloud/pubsub';
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
  ackId: string;
}

export function createIngestActivities({ pubsub, storage, config, logger, hooks }: IngestDeps) {
  // Unary pull gives the batch boundaries and the explicit ack this design needs;
  // the client is created lazily and shared by all batches of this worker.
  let subscriber: v1.SubscriberClient | undefined;
  const subscriberClient = () => (subscriber ??= new v1.SubscriberClient(pubsub.options as ConstructorParameters<typeof v1.SubscriberClient>[0]));
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
      const client = subscriberClient();
      const subPath = client.subscriptionPath(config.gcp.projectId, subscription);

      const [response] = await client.pull(
        { subscription: subPath, maxMessages },
        { timeout: maxWaitMs + 5_000, retry: null as never },
      );
      const received = response.receivedMessages ?? [];
      ctx.heartbeat({ stage: 'pulled', count: received.length });
      const receivedAt = new Date();
      if (received.length === 0) return { pulled: 0, written: 0, quarantined: 0, objects: [], finishedAt: receivedAt.toISOString() };

      const messages: Pulled[] = received.map((r) => ({
        ackId: r.ackId ?? '',
        messageId: r.message?.messageId ?? '',
        data: Buffer.from(r.message?.data ?? new Uint8Array()),
        attributes: { ...(r.message?.attributes ?? {}) },
        publishTime: timestampToDate(r.message?.publishTime),
      }));

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
      await client.acknowledge({ subscription: subPath, ackIds: messages.map((m) => m.ackId) });
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
    },
  };
}

export type IngestActivities = ReturnType<typeof createIngestActivities>;

/** Protobuf timestamps arrive with seconds as a number, a string or a Long; String() reads all three. */
function timestampToDate(ts: { seconds?: unknown; nanos?: number | null } | null | undefined): Date {
  if (!ts) return new Date();
  return new Date(Number(String(ts.seconds ?? 0)) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6));
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
