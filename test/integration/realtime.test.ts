/**
 * Real-time reclassification on the real local stack: events published to
 * Pub/Sub, the trigger listener, the reclassifyCustomer workflow on a worker in
 * this process, Firestore, the profile API over HTTP, and a webhook receiver on
 * 127.0.0.1:0 that verifies signatures as a subscriber would.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createFirestoreProfileStore } from '../../api/firestore-store.js';
import { buildProfileApi } from '../../api/server.js';
import { createProfileStore } from '../../stores/profiles.js';
import { encodeEvent } from '../../core/events.js';
import type { Profile } from '../../core/profile.js';
import { parentSegmentOf } from '../../core/segmentation/hierarchy.js';
import type { SegmentModel } from '../../core/segmentation/model.js';
import { DELIVERY_ID_HEADER, SIGNATURE_HEADER, verifyWebhook } from '../../core/webhook-signature.js';
import { createTriggerListener, type TriggerListener } from '../../workers/trigger-listener.js';
import {
  RECLASSIFY_WORKFLOW,
  reclassifyStateQuery,
  reclassifyWorkflowId,
  triggerEventSignal,
} from '../../workflows/reclassify-messages.js';
import type { ReclassifyInput } from '../../workflows/reclassify-messages.js';
import {
  installCurrentModel,
  nestedTwoSegmentModel,
  OCCASIONAL,
  publishEvent,
  purchaseEvent,
  startRealtimeHarness,
  VIP,
  type RealtimeHarness,
} from '../support/realtime-fixtures.js';

const SECRET = 'whsec_realtime_test_0123456789abcdef';
const TOKEN = 'realtime-test-token-0123456789';
const MODEL_VERSION = 'rt-test-2026-11-26';
const suffix = randomUUID().slice(0, 8);
/** The current model has nested segments (a parent each); BEFORE, the model that left one parent over both. */
const CURRENT = nestedTwoSegmentModel(MODEL_VERSION, 2);
const BEFORE = nestedTwoSegmentModel('rt-test-2026-11-25', 1);

interface Received {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

let receiver: Server;
const received: Received[] = [];
let h: RealtimeHarness;
let listener: TriggerListener;
let api: ReturnType<typeof buildProfileApi>;
let apiBase: string;

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function apiProfile(customerId: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${apiBase}/v1/customers/${customerId}/profile`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const deliveriesFor = (customerId: string) =>
  received.filter((r) => (JSON.parse(r.body.toString('utf8')) as { customer_id: string }).customer_id === customerId);

before(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/crm`;

  h = await startRealtimeHarness('realtime', {
    env: {
      SEGFLOW_EVENTS_TOPIC: `rt-events-${suffix}`,
      SEGFLOW_TRIGGER_SUBSCRIPTION: `rt-triggers-${suffix}`,
      SEGFLOW_LAKE_BUCKET: `rt-lake-${suffix}`,
      SEGFLOW_FIRESTORE_PROFILES: `rt_profiles_${suffix}`,
      SEGFLOW_DATASET_MARTS: `rt_marts_${suffix.replace(/-/g, '_')}`,
      SEGFLOW_WEBHOOKS: JSON.stringify([{ id: 'crm', url: hookUrl, secret: SECRET }]),
      SEGFLOW_RECLASSIFY_IDLE_MINUTES: '0.2',
      SEGFLOW_API_TOKENS: TOKEN,
      // Workflow ids carry the prefix like every other id segflow creates; the state query below finds them by it.
      SEGFLOW_SCHEDULE_PREFIX: `rt-${suffix}.`,
    },
  });
  const { pubsub, storage, firestore } = h.worker.clients;
  await installCurrentModel(storage, h.config.lake.bucket, CURRENT);
  await pubsub.topic(h.config.pubsub.topic).get({ autoCreate: true });
  listener = await createTriggerListener({ pubsub, client: h.client, config: h.config, logger: h.logger });

  api = buildProfileApi({
    store: createFirestoreProfileStore({ firestore, config: h.config, logger: h.logger }),
    tokens: h.config.api.tokens,
    logger: h.logger,
    cache: { latencyBudgetMs: 250, uncachedTimeoutMs: 1_000 },
  });
  await api.listen({ host: '127.0.0.1', port: 0 });
  apiBase = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
});

after(async () => {
  await listener?.stop();
  await api?.close();
  if (h) {
    const { pubsub, firestore } = h.worker.clients;
    await pubsub
      .subscription(h.config.pubsub.triggerSubscription)
      .delete()
      .catch(() => undefined);
    await pubsub
      .topic(h.config.pubsub.topic)
      .delete()
      .catch(() => undefined);
    await firestore.recursiveDelete(firestore.collection(h.config.firestore.profiles)).catch(() => undefined);
    await h.close();
  }
  receiver?.closeAllConnections();
  await new Promise((resolve) => receiver?.close(resolve));
});

describe('real-time reclassification', () => {
  it('moves a customer to another segment on purchases: the API shows it and the receiver gets one signed delivery', async () => {
    const customerId = `rt-cust-${suffix}`;
    const profiles = createProfileStore({ firestore: h.worker.clients.firestore, config: h.config, logger: h.logger });
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
    const start: Profile = {
      customer_id: customerId,
      segment_id: OCCASIONAL.id,
      segment_label: OCCASIONAL.label,
      // As a profile sync with the current model left it: a missing parent would be a change of its own.
      parent_segment: parentSegmentOf(CURRENT, OCCASIONAL.id),
      model_version: MODEL_VERSION,
      features: { frequency: 1, monetary: 30, recency_days: 12, r_score: 3, f_score: 1, m_score: 1, sessions_per_week: 2 },
      rfm: { recency_days: 12, frequency: 1, monetary: 30, r_score: 3, f_score: 1, m_score: 1 },
      demographics: { country: 'DE' },
      updated_at: hourAgo,
      source_event_time: hourAgo,
    };
    await profiles.writeProfile(start);
    assert.equal((await apiProfile(customerId)).body.segment_label, OCCASIONAL.label);

    // Noise the listener must ack and ignore: a page view and a message that is not an event.
    const pubsub = h.worker.clients.pubsub;
    await publishEvent(pubsub, h.config.pubsub.topic, {
      event_id: randomUUID(),
      customer_id: customerId,
      type: 'page_view',
      ts: new Date().toISOString(),
      properties: { url: 'https://shop.example/', duration_ms: 1200 },
    });
    await pubsub.topic(h.config.pubsub.topic).publishMessage({ data: Buffer.from('not json'), attributes: { type: 'purchase' } });

    const burst = [purchaseEvent(customerId, 900), purchaseEvent(customerId, 700), purchaseEvent(customerId, 400)];
    const t0 = Date.now();
    for (const e of burst) await publishEvent(pubsub, h.config.pubsub.topic, e);

    const body = await eventually('the API to show the new segment', async () => {
      const r = await apiProfile(customerId);
      return r.status === 200 && r.body.segment_label === VIP.label && (r.body.rfm as { frequency: number }).frequency === 4
        ? r.body
        : undefined;
    });
    const visibleMs = Date.now() - t0;
    assert.equal(body.segment_id, VIP.id);
    assert.equal(body.model_version, MODEL_VERSION);
    assert.equal(body.stale, false);
    assert.deepEqual(
      { ...(body.rfm as object) },
      { recency_days: 0, frequency: 4, monetary: 2030, r_score: 5, f_score: 3, m_score: 5 },
      'defaults bound the scores: no warehouse table in this test',
    );
    assert.equal((body.features as Record<string, number>).sessions_per_week, 2, 'features the events do not touch are kept');

    // Exactly one delivery for this change, even after the remaining burst steps and some settling time.
    await eventually('a webhook delivery', async () => (deliveriesFor(customerId).length > 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 2_000));
    const deliveries = deliveriesFor(customerId);
    assert.equal(deliveries.length, 1, `expected one delivery, got ${deliveries.length}`);
    const [delivery] = deliveries;
    const signature = delivery!.headers[SIGNATURE_HEADER.toLowerCase()] as string;
    assert.deepEqual(verifyWebhook({ secrets: SECRET, header: signature, body: delivery!.body }).ok, true);
    const payload = JSON.parse(delivery!.body.toString('utf8')) as Record<string, unknown>;
    assert.deepEqual(payload.old_segment, OCCASIONAL);
    assert.deepEqual(payload.new_segment, VIP);
    assert.deepEqual(payload.new_parent_segment, parentSegmentOf(CURRENT, VIP.id));
    assert.equal(payload.model_version, MODEL_VERSION);
    assert.match(String(payload.delivery_id), new RegExp(`^${customerId}:${MODEL_VERSION}:${VIP.id}:[0-9a-f-]{36}$`));
    assert.equal(delivery!.headers[DELIVERY_ID_HEADER.toLowerCase()], payload.delivery_id);

    // A tampered body fails verification.
    const tampered = Buffer.from(delivery!.body.toString('utf8').replace('"VIP"', '"Occasional"'));
    assert.notDeepEqual(tampered, delivery!.body);
    const check = verifyWebhook({ secrets: SECRET, header: signature, body: tampered });
    assert.deepEqual(check, { ok: false, reason: 'signature_mismatch' });

    const handle = h.client.workflow.getHandle(reclassifyWorkflowId(customerId, h.config.schedules.prefix));
    const state = await handle.query(reclassifyStateQuery);
    assert.equal(state.totals.events, 3);
    assert.equal(state.totals.segmentChanges, 1);
    assert.equal(state.totals.webhooksDelivered, 1);
    assert.ok(state.lastStep && state.lastStep.latencies.every((l) => l.fromPublishMs >= 0 && l.fromEventMs >= 0));
    assert.ok(listener.stats.ignored >= 1, 'the page view is ignored');
    assert.ok(listener.stats.invalid >= 1, 'the invalid message is acked and logged');
    // The Temporal UI's stack trace of the waiting workflow still shows where it waits, in its own
    // source, with the sandbox's stacks cut to 6 frames (workflows/sandbox-setup.ts).
    const stacks = await handle.query<string>('__stack_trace');
    assert.match(stacks, /at reclassifyCustomer \(.*workflows\/reclassify-customer\.ts:\d+:\d+\)/, stacks);
    h.logger.info({ visibleMs, latencies: state.lastStep?.latencies }, 'event to visible segment');
  });

  it("coalesces a burst of one customer's events into fewer signals, acking each event, and applies every event once", async () => {
    const customerId = `rt-burst-${suffix}`;
    const before = { ...listener.stats };
    const topic = h.worker.clients.pubsub.topic(h.config.pubsub.topic, { batching: { maxMessages: 50, maxMilliseconds: 20 } });
    const events = Array.from({ length: 12 }, () => purchaseEvent(customerId, 2));
    // One publish batch: the listener receives the burst together and at most one signal is in flight per customer.
    await Promise.all(
      events.map((e) => {
        const { data, attributes } = encodeEvent(e);
        return topic.publishMessage({ data, attributes: { ...attributes } });
      }),
    );
    const body = await eventually('all 12 purchases applied', async () => {
      const r = await apiProfile(customerId);
      return r.status === 200 && (r.body.rfm as { frequency: number }).frequency === 12 ? r.body : undefined;
    });
    assert.equal((body.rfm as { monetary: number }).monetary, 24);
    const signalled = listener.stats.signalled - before.signalled;
    const signals = listener.stats.signals - before.signals;
    assert.equal(signalled, 12, 'every event was signalled (and so acked) once');
    assert.ok(signals < signalled, `expected fewer signals than events, got ${signals} signals for ${signalled} events`);
    assert.equal(listener.stats.coalesced - before.coalesced, signalled - signals);
    const state = await h.client.workflow
      .getHandle(reclassifyWorkflowId(customerId, h.config.schedules.prefix))
      .query(reclassifyStateQuery);
    assert.equal(state.totals.events, 12);
    assert.equal(state.totals.duplicates, 0);
    assert.ok(state.totals.steps <= signals, `steps (${state.totals.steps}) never exceed signals (${signals})`);
  });

  it('gives a customer nobody knew a profile from the event alone', async () => {
    const customerId = `rt-new-${suffix}`;
    await publishEvent(h.worker.clients.pubsub, h.config.pubsub.topic, purchaseEvent(customerId, 25));
    const body = await eventually('a profile for the new customer', async () => {
      const r = await apiProfile(customerId);
      return r.status === 200 ? r.body : undefined;
    });
    assert.equal(body.segment_label, OCCASIONAL.label);
    assert.deepEqual(body.rfm, { recency_days: 0, frequency: 1, monetary: 25, r_score: 5, f_score: 1, m_score: 1 });
    assert.equal((body.features as Record<string, number>).tenure_days, 0);
    // A first segment is a change too: subscribers hear about new customers.
    await eventually('the new customer webhook', async () => (deliveriesFor(customerId).length === 1 ? true : undefined));
    assert.equal((JSON.parse(deliveriesFor(customerId)[0]!.body.toString('utf8')) as { old_segment: unknown }).old_segment, null);
  });

  it('starts the workflow again for a customer whose workflow ended after taking signals from the listener', async () => {
    const customerId = `rt-again-${suffix}`;
    const handle = h.client.workflow.getHandle(reclassifyWorkflowId(customerId, h.config.schedules.prefix));
    const frequency = async () => {
      const r = await apiProfile(customerId);
      return r.status === 200 ? (r.body.rfm as { frequency: number }).frequency : 0;
    };
    await publishEvent(h.worker.clients.pubsub, h.config.pubsub.topic, purchaseEvent(customerId, 25));
    await eventually('the first purchase applied', async () => ((await frequency()) === 1 ? true : undefined));
    // The listener now sends this customer plain signals; the run ends (as after its idle period) and
    // the next event must still arrive, through a new run.
    const ended = (await handle.describe()).runId;
    await handle.terminate('the test ends this run');
    const failedBefore = listener.stats.failed;
    await publishEvent(h.worker.clients.pubsub, h.config.pubsub.topic, purchaseEvent(customerId, 25));
    await eventually('the second purchase applied', async () => ((await frequency()) === 2 ? true : undefined));
    const now = await handle.describe();
    assert.notEqual(now.runId, ended, 'a new run took the event');
    assert.equal(now.status.name, 'RUNNING');
    assert.equal(
      listener.stats.failed,
      failedBefore,
      'the "not found" answer led straight to signal-with-start, not to a nack and a redelivery',
    );
  });

  it('drops a redelivered event, continues as new with its state, and ends when idle', async () => {
    const customerId = `rt-can-${suffix}`;
    const workflowId = reclassifyWorkflowId(customerId, h.config.schedules.prefix);
    const input: ReclassifyInput = { customerId, idleMinutes: 0.05, maxHistoryEvents: 12 };
    const events = Array.from({ length: 6 }, () => purchaseEvent(customerId, 5));
    const send = (i: number) =>
      h.client.workflow.signalWithStart(RECLASSIFY_WORKFLOW, {
        workflowId,
        taskQueue: h.config.temporal.taskQueue,
        args: [input],
        signal: triggerEventSignal,
        signalArgs: [{ event: events[i] as never, publishTime: new Date().toISOString() }],
      });
    const first = await send(0);
    const firstRunId = first.signaledRunId;
    await send(0); // a Pub/Sub redelivery of the same event
    for (let i = 1; i < events.length; i++) {
      await send(i);
      await new Promise((r) => setTimeout(r, 150));
    }
    const handle = h.client.workflow.getHandle(workflowId);
    const result = (await handle.result()) as { totals: { events: number; duplicates: number } };
    assert.equal(result.totals.events, 6);
    assert.equal(result.totals.duplicates, 1);
    const described = await handle.describe();
    assert.notEqual(described.runId, firstRunId, 'the workflow continued as new');
    const profile = await apiProfile(customerId);
    assert.equal((profile.body.rfm as { frequency: number }).frequency, 6);
  });
});

/** A VIP customer as the model before left it: `parentFrom` says whose hierarchy gave the stored parent. */
function vipProfile(customerId: string, parentFrom: SegmentModel): Profile {
  const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
  return {
    customer_id: customerId,
    segment_id: VIP.id,
    segment_label: VIP.label,
    parent_segment: parentSegmentOf(parentFrom, VIP.id),
    model_version: parentFrom.version,
    features: { frequency: 10, monetary: 2000, recency_days: 3, r_score: 5, f_score: 4, m_score: 5 },
    rfm: { recency_days: 3, frequency: 10, monetary: 2000, r_score: 5, f_score: 4, m_score: 5 },
    demographics: {},
    updated_at: hourAgo,
    source_event_time: hourAgo,
  };
}

describe('nested segments in real time', () => {
  it('the models differ only in the parent of VIP', () => {
    assert.deepEqual(
      [BEFORE, CURRENT].map((m) => m.segments.map((s) => [s.id, s.label])),
      [
        [
          [0, 'Occasional'],
          [1, 'VIP'],
        ],
        [
          [0, 'Occasional'],
          [1, 'VIP'],
        ],
      ],
    );
    assert.equal(BEFORE.hierarchy?.parents.length, 1);
    assert.equal(CURRENT.hierarchy?.parents.length, 2);
    assert.notDeepEqual(parentSegmentOf(BEFORE, VIP.id), parentSegmentOf(CURRENT, VIP.id));
  });

  it('same segment and same parent: the API shows the parent, and no webhook is sent', async () => {
    const customerId = `nested-same-${suffix}`;
    const profiles = createProfileStore({ firestore: h.worker.clients.firestore, config: h.config, logger: h.logger });
    await profiles.writeProfile(vipProfile(customerId, CURRENT));
    await publishEvent(h.worker.clients.pubsub, h.config.pubsub.topic, purchaseEvent(customerId, 300));
    const body = await eventually('the purchase to reach the profile', async () => {
      const r = await apiProfile(customerId);
      return r.status === 200 && (r.body.rfm as { frequency: number }).frequency === 11 ? r.body : undefined;
    });
    assert.deepEqual([body.segment_id, body.parent_segment], [VIP.id, parentSegmentOf(CURRENT, VIP.id)]);
    await new Promise((r) => setTimeout(r, 2_000));
    assert.equal(deliveriesFor(customerId).length, 0, 'nothing changed: no delivery');
  });

  it('a change of parent alone is a segment change: one delivery carrying the previous and current parent', async () => {
    const customerId = `nested-parent-${suffix}`;
    const profiles = createProfileStore({ firestore: h.worker.clients.firestore, config: h.config, logger: h.logger });
    await profiles.writeProfile(vipProfile(customerId, BEFORE));
    assert.deepEqual((await apiProfile(customerId)).body.parent_segment, parentSegmentOf(BEFORE, VIP.id));
    await publishEvent(h.worker.clients.pubsub, h.config.pubsub.topic, purchaseEvent(customerId, 300));
    const body = await eventually('the API to show the new parent', async () => {
      const r = await apiProfile(customerId);
      return r.status === 200 && r.body.model_version === CURRENT.version ? r.body : undefined;
    });
    assert.deepEqual([body.segment_id, body.segment_label], [VIP.id, VIP.label], 'the segment itself is unchanged');
    assert.deepEqual(body.parent_segment, parentSegmentOf(CURRENT, VIP.id));
    await eventually('a webhook delivery', async () => (deliveriesFor(customerId).length > 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 2_000));
    const deliveries = deliveriesFor(customerId);
    assert.equal(deliveries.length, 1, `expected one delivery, got ${deliveries.length}`);
    const payload = JSON.parse(deliveries[0]!.body.toString('utf8')) as Record<string, unknown>;
    assert.deepEqual(payload.old_segment, VIP);
    assert.deepEqual(payload.new_segment, VIP);
    assert.deepEqual(payload.old_parent_segment, parentSegmentOf(BEFORE, VIP.id));
    assert.deepEqual(payload.new_parent_segment, parentSegmentOf(CURRENT, VIP.id));
    assert.equal(payload.model_version, CURRENT.version);
  });
});
