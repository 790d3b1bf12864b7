/**
 * The ingestion buffer on the Pub/Sub emulator: a worker whose buffer no batch activity uses
 * hands its leased messages back, so another worker's subscriber gets them at once instead of
 * after the lease-extension limit (ten minutes).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import type { Message } from '@google-cloud/pubsub';
import { createGcpClients } from '../../stores/clients.js';
import { SubscriptionBuffer } from '../../activities/pubsub-buffer.js';
import { testConfig } from '../support/stack.js';

test('an idle buffer nacks what it holds and closes its stream; a busy one keeps its messages', async () => {
  const config = testConfig('pubsub-buffer');
  const { pubsub } = createGcpClients(config);
  const suffix = randomUUID().slice(0, 8);
  const [topic] = await pubsub.createTopic(`buffer-${suffix}`);
  const [subscription] = await topic.createSubscription(`buffer-${suffix}`, { ackDeadlineSeconds: 60 });
  const ids = await Promise.all(Array.from({ length: 5 }, (_, i) => topic.publishMessage({ data: Buffer.from(`m${i}`) })));

  const busy = new SubscriptionBuffer(pubsub, subscription.name, { maxBuffered: 100, maxExtensionMinutes: 10, idleReleaseMs: 300 });
  const inUse = busy.use();
  // Leased by the buffer but not taken: waiting 2 s here proves a buffer in use keeps them.
  await new Promise((r) => setTimeout(r, 2_000));
  assert.equal(busy.broken, false, 'a buffer in use must not be released');

  const seenElsewhere: string[] = [];
  const other = pubsub.subscription(subscription.name);
  other.on('message', (m: Message) => {
    seenElsewhere.push(m.id);
    m.ack();
  });
  try {
    await new Promise((r) => setTimeout(r, 1_500));
    assert.deepEqual(seenElsewhere, [], 'while the first buffer holds the leases nobody else gets the messages');

    inUse();
    const deadline = Date.now() + 15_000;
    while (seenElsewhere.length < ids.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(busy.broken, true, 'the idle buffer closed its stream');
    assert.deepEqual([...new Set(seenElsewhere)].sort(), [...ids].sort(), 'every message came back to the other subscriber');
  } finally {
    await other.close();
    await busy.close();
    await subscription.delete();
    await topic.delete();
    await pubsub.close();
  }
});
