/**
 * Publishing for producers, the demo and tests: events are validated and encoded
 * with the v1 contract (type as a message attribute, so subscriptions can filter),
 * raw messages go out as given (for malformed-input tests).
 */
import type { PubSub, Topic } from '@google-cloud/pubsub';
import { encodeEvent, type EventInput } from '../../core/events.js';

export interface OutgoingMessage {
  data: Buffer;
  attributes: Record<string, string>;
}

export interface PublishProgress {
  published: number;
  total?: number;
  failed: number;
}

export function eventMessage(event: EventInput): OutgoingMessage {
  const { data, attributes } = encodeEvent(event);
  return { data, attributes: { ...attributes } };
}

export async function openTopic(pubsub: PubSub, name: string, create = true): Promise<Topic> {
  const topic = pubsub.topic(name, {
    batching: { maxMessages: 500, maxMilliseconds: 20 },
  });
  if (create) await topic.get({ autoCreate: true });
  return topic;
}

/**
 * Publish messages with a bounded number in flight; returns the message ids in
 * input order. Failures are collected (and thrown together at the end) so one
 * bad publish never silently drops the rest.
 */
export async function publishAll(
  topic: Topic,
  messages: Iterable<OutgoingMessage>,
  opts: { total?: number; inFlight?: number; onProgress?: (p: PublishProgress) => void; ratePerSecond?: number } = {},
): Promise<string[]> {
  const inFlight = opts.inFlight ?? 2000;
  const ids: string[] = [];
  const errors: Error[] = [];
  const pending = new Set<Promise<void>>();
  let published = 0;
  let index = 0;
  const started = Date.now();
  let lastReport = 0;
  for (const msg of messages) {
    const i = index++;
    if (opts.ratePerSecond) {
      const due = started + (i * 1000) / opts.ratePerSecond;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const p = topic
      .publishMessage({ data: msg.data, attributes: msg.attributes })
      .then((id) => {
        ids[i] = id;
        published++;
      })
      .catch((err: Error) => {
        errors.push(err);
      })
      .finally(() => {
        pending.delete(p);
        if (opts.onProgress && Date.now() - lastReport > 1000) {
          lastReport = Date.now();
          opts.onProgress({ published, total: opts.total, failed: errors.length });
        }
      });
    pending.add(p);
    if (pending.size >= inFlight) await Promise.race(pending);
  }
  await Promise.all(pending);
  await topic.flush();
  opts.onProgress?.({ published, total: opts.total, failed: errors.length });
  if (errors.length > 0) {
    throw new AggregateError(errors, `${errors.length} of ${index} messages failed to publish; first: ${errors[0]!.message}`);
  }
  return ids;
}
