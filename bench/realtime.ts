/**
 * npm run bench:realtime — the real-time path end to end on the local stack,
 * and the profile API under load beside a bare Firestore read, in one run.
 *
 * Part 1 (event -> visible segment): C customers start as "Occasional". A
 * warm-up purchase each (too small to change the segment) starts their
 * reclassifyCustomer workflows, as a running system would have them. Then
 * purchases of 1500 are published at a steady rate, round robin over the
 * customers: each customer's first one moves it to "VIP" (a segment change),
 * later ones keep it there. An event counts as visible when the profile API
 * answers with a profile that includes it (rfm.frequency has reached it) and
 * the segment assigned with it; the bench notices the write through one
 * Firestore listener, then asks the API (again every --poll-ms until it
 * agrees). Reported: publish call -> visible (p50, p95, p99) for all events
 * and for the segment changes alone, and the breakdown publish -> listener ->
 * signal accepted -> visible.
 * The path: Pub/Sub emulator -> trigger listener -> signal-with-start ->
 * reclassifyCustomer (local activities: Firestore read, assign, transactional
 * write) -> profile API (Firestore read through its cache).
 *
 * Part 2 (API under load, measured first so the real-time backlog cannot disturb it): an open-loop load at a fixed request rate (requests
 * are sent on schedule whether or not earlier ones finished, so a slow server
 * shows up as latency, not as a lower rate) against GET /v1/customers/:id/profile
 * on the bench's customers; then the same schedule of bare Firestore document
 * reads (doc.get()) as the baseline. Everything runs in this process; the API's
 * rate limit is off (its default of 1200 requests a minute per client would
 * throttle a single load generator).
 */
import { Command, InvalidArgumentError } from 'commander';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'node:http';
import { createFirestoreProfileStore } from '../api/firestore-store.js';
import { buildProfileApi } from '../api/server.js';
import { createProfileActivities } from '../activities/profiles.js';
import type { Profile } from '../core/profile.js';
import { createTriggerListener } from '../workers/trigger-listener.js';
import {
  installCurrentModel,
  OCCASIONAL,
  purchaseEvent,
  startRealtimeHarness,
  twoSegmentModel,
  VIP,
} from '../test/support/realtime-fixtures.js';
import { encodeEvent } from '../core/events.js';

const int = (name: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be a whole number >= ${min}, found ${v}`);
  return n;
};

const program = new Command('bench:realtime')
  .description('Event -> visible segment latency through the profile API, and API latency under load beside a bare Firestore read.')
  .option('--rate <n>', 'purchase events per second', int('--rate', 1), 100)
  .option('--seconds <n>', 'seconds of event publishing', int('--seconds', 1), 20)
  .option('--customers <n>', 'customers the events go to (round robin)', int('--customers', 1), 200)
  .option('--api-rps <n>', 'profile API requests per second', int('--api-rps', 1), 500)
  .option('--api-seconds <n>', 'seconds of API load (and of Firestore baseline)', int('--api-seconds', 1), 10)
  .option('--poll-ms <n>', 'after the write is seen, how often the API is asked until it shows it', int('--poll-ms', 1), 5)
  .showHelpAfterError();
program.parse();
const opts = program.opts<{ rate: number; seconds: number; customers: number; apiRps: number; apiSeconds: number; pollMs: number }>();

const TOKEN = 'bench-realtime-token-0123456789';
const id = randomUUID().slice(0, 8);
const MODEL_VERSION = `bench-rt-${id}`;

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function summary(values: number[]): { n: number; p50: number; p95: number; p99: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99), max: s.at(-1) ?? NaN };
}

const fmt = (ms: number) => (Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : 'n/a');

/** Runs `task` `rps` times a second for `seconds`, on schedule; returns per-call latencies and the achieved rate. */
async function openLoop(rps: number, seconds: number, task: (i: number) => Promise<void>) {
  const total = rps * seconds;
  const latencies: number[] = [];
  let errors = 0;
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rps) + 1);
    for (; sent < due; sent++) {
      const i = sent;
      const start = performance.now();
      pending.push(
        task(i).then(
          () => void latencies.push(performance.now() - start),
          () => void (errors += 1),
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - t0) / 1000;
  return { ...summary(latencies), errors, rps: total / elapsed };
}

async function main(): Promise<void> {
  const customers = opts.customers;
  const events = opts.rate * opts.seconds;
  const h = await startRealtimeHarness('bench-realtime', {
    env: {
      SEGFLOW_EVENTS_TOPIC: `bench-rt-events-${id}`,
      SEGFLOW_TRIGGER_SUBSCRIPTION: `bench-rt-triggers-${id}`,
      SEGFLOW_LAKE_BUCKET: `bench-rt-lake-${id}`,
      SEGFLOW_FIRESTORE_PROFILES: `bench_rt_profiles_${id}`,
      SEGFLOW_DATASET_MARTS: `bench_rt_marts_${id}`,
      SEGFLOW_RECLASSIFY_IDLE_MINUTES: '10',
      SEGFLOW_API_TOKENS: TOKEN,
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    },
  });
  const { pubsub, storage, firestore } = h.worker.clients;
  const collection = firestore.collection(h.config.firestore.profiles);
  const api = buildProfileApi({
    store: createFirestoreProfileStore({ firestore, config: h.config, logger: h.logger }),
    tokens: h.config.api.tokens,
    logger: h.logger,
    rateLimit: false,
  });
  let listener: Awaited<ReturnType<typeof createTriggerListener>> | undefined;
  try {
    console.log(`bench:realtime — ${events} purchases at ${opts.rate}/s over ${customers} customers; API ${opts.apiRps} req/s for ${opts.apiSeconds} s`);
    await installCurrentModel(storage, h.config.lake.bucket, twoSegmentModel(MODEL_VERSION));
    const ids = Array.from({ length: customers }, (_, i) => `bench-${id}-${i}`);
    const asOf = new Date(Date.now() - 3_600_000).toISOString();
    const seed = (customerId: string): Profile => ({
      customer_id: customerId,
      segment_id: OCCASIONAL.id,
      segment_label: OCCASIONAL.label,
      model_version: MODEL_VERSION,
      features: { frequency: 1, monetary: 30, recency_days: 30, r_score: 3, f_score: 1, m_score: 1 },
      rfm: { recency_days: 30, frequency: 1, monetary: 30, r_score: 3, f_score: 1, m_score: 1 },
      demographics: {},
      updated_at: asOf,
      source_event_time: asOf,
    });
    const profiles = createProfileActivities({ firestore, config: h.config, logger: h.logger });
    const seeded = await profiles.writeProfilesBulk(ids.map(seed));
    console.log(`seeded ${seeded.created} profiles in ${seeded.durationMs} ms`);

    await api.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
    const agent = new Agent({ keepAlive: true, maxSockets: 64 });
    // node:http rather than fetch: the client's own overhead is part of every figure, so keep it small.
    const get = (customerId: string) =>
      new Promise<{ segment_label: string; rfm: { frequency: number } }>((resolve, reject) => {
        const req = request(`${base}/v1/customers/${customerId}/profile`, { agent, headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}`));
            else resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as { segment_label: string; rfm: { frequency: number } });
          });
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });

    // ---- Part 2 (run first, on a quiet system): API under load, beside a bare Firestore read
    const pick = (i: number) => ids[(i * 7919) % ids.length]!;
    for (let i = 0; i < Math.min(ids.length, 500); i++) await get(pick(i)); // the API cache holds what a running API would
    const apiRun = await openLoop(opts.apiRps, opts.apiSeconds, async (i) => {
      await get(pick(i));
    });
    const fsRun = await openLoop(opts.apiRps, opts.apiSeconds, async (i) => {
      const snap = await collection.doc(pick(i)).get();
      if (!snap.exists) throw new Error('missing');
    });
    console.log(`profile API under load (target ${opts.apiRps} req/s), beside a bare Firestore read on the same schedule`);
    console.log(`  ${'API GET /v1/customers/:id/profile'.padEnd(36)} p50 ${fmt(apiRun.p50)}  p99 ${fmt(apiRun.p99)}  max ${fmt(apiRun.max)}  ${apiRun.rps.toFixed(0)} req/s  errors ${apiRun.errors}   (target p99 < 10 ms: ${apiRun.p99 < 10 ? 'met' : 'NOT met'})`);
    console.log(`  ${'Firestore doc.get() (baseline)'.padEnd(36)} p50 ${fmt(fsRun.p50)}  p99 ${fmt(fsRun.p99)}  max ${fmt(fsRun.max)}  ${fsRun.rps.toFixed(0)} req/s  errors ${fsRun.errors}`);
    console.log(`  API / Firestore p50 ratio ${(apiRun.p50 / fsRun.p50).toFixed(2)}, p99 ratio ${(apiRun.p99 / fsRun.p99).toFixed(2)}`);

    // ---- Part 1: event -> visible segment
    const stages = new Map<string, { receivedAt: number; signalledAt: number; publishTime: number }>();
    await pubsub.topic(h.config.pubsub.topic).get({ autoCreate: true });
    listener = await createTriggerListener(
      { pubsub, client: h.client, config: h.config, logger: h.logger },
      { onSignalled: (i) => stages.set(i.eventId, i) },
    );
    const topic = pubsub.topic(h.config.pubsub.topic, { batching: { maxMessages: 100, maxMilliseconds: 1 } });
    const publish = (customerId: string, amount: number) => {
      const event = purchaseEvent(customerId, amount);
      const { data, attributes } = encodeEvent(event);
      return { eventId: String(event.event_id), published: topic.publishMessage({ data, attributes: { ...attributes } }) };
    };

    // Frequency per customer as Firestore last showed it; waiters resolve when it reaches theirs.
    const frequency = new Map<string, number>();
    const waiters = new Map<string, Array<{ k: number; resolve: () => void }>>();
    const unsubscribe = collection.onSnapshot((snap) => {
      for (const change of snap.docChanges()) {
        if (change.type === 'removed') continue;
        const f = Number(change.doc.get('rfm.frequency') ?? 0);
        frequency.set(change.doc.id, f);
        const list = waiters.get(change.doc.id);
        if (!list) continue;
        waiters.set(change.doc.id, list.filter((w) => (w.k <= f ? (w.resolve(), false) : true)));
      }
    });
    const reached = (customerId: string, k: number, timeoutMs: number) =>
      new Promise<boolean>((resolve) => {
        if ((frequency.get(customerId) ?? 0) >= k) return resolve(true);
        const timer = setTimeout(() => resolve(false), timeoutMs);
        const list = waiters.get(customerId) ?? [];
        list.push({ k, resolve: () => (clearTimeout(timer), resolve(true)) });
        waiters.set(customerId, list);
      });

    // Warm-up: every customer's workflow is running and the model and score bounds are cached.
    const tWarm = Date.now();
    for (const c of ids) publish(c, 1);
    await Promise.all(ids.map((c) => reached(c, 2, 120_000)));
    console.log(`warm-up: ${customers} workflows started and first purchases applied in ${Date.now() - tWarm} ms`);

    const visible: number[] = [];
    const visibleChanges: number[] = [];
    const toListener: number[] = [];
    const toSignal: number[] = [];
    const signalToVisible: number[] = [];
    let timedOut = 0;
    const expected = new Map<string, number>(ids.map((c) => [c, 2]));
    const watch = async (customerId: string, k: number, eventId: string, publishedAt: number) => {
      const deadline = publishedAt + 30_000;
      const noticed = await reached(customerId, k, 30_000);
      for (;;) {
        const body = noticed ? await get(customerId).catch(() => undefined) : undefined;
        if (body && body.rfm.frequency >= k && body.segment_label === VIP.label) {
          const at = Date.now();
          visible.push(at - publishedAt);
          if (k === 3) visibleChanges.push(at - publishedAt);
          const s = stages.get(eventId);
          if (s) {
            toListener.push(s.receivedAt - publishedAt);
            toSignal.push(s.signalledAt - publishedAt);
            signalToVisible.push(at - s.signalledAt);
          }
          return;
        }
        if (Date.now() > deadline) {
          timedOut += 1;
          return;
        }
        await new Promise((r) => setTimeout(r, opts.pollMs));
      }
    };
    const watches: Promise<void>[] = [];
    const p1 = await openLoop(opts.rate, opts.seconds, async (i) => {
      const customerId = ids[i % ids.length]!;
      const k = expected.get(customerId)! + 1;
      expected.set(customerId, k);
      const publishedAt = Date.now();
      const { eventId, published } = publish(customerId, 1500);
      watches.push(watch(customerId, k, eventId, publishedAt));
      await published;
    });
    await Promise.all(watches);
    unsubscribe();
    await listener.stop();
    listener = undefined;

    const ev = summary(visible);
    const ch = summary(visibleChanges);
    console.log('\nevent -> reclassified profile visible through the API');
    console.log(`  ${events} events at ${p1.rps.toFixed(1)}/s achieved; visible ${ev.n}, timed out ${timedOut}, publish errors ${p1.errors}`);
    console.log(`  all events        p50 ${fmt(ev.p50)}  p95 ${fmt(ev.p95)}  p99 ${fmt(ev.p99)}  max ${fmt(ev.max)}   (target p99 < 1000 ms: ${ev.p99 < 1000 ? 'met' : 'NOT met'})`);
    console.log(`  segment changes   p50 ${fmt(ch.p50)}  p95 ${fmt(ch.p95)}  p99 ${fmt(ch.p99)}  max ${fmt(ch.max)}   (n ${ch.n}: Occasional -> VIP)`);
    const b = (name: string, v: number[]) => {
      const s = summary(v);
      console.log(`  ${name.padEnd(34)} p50 ${fmt(s.p50)}  p99 ${fmt(s.p99)}`);
    };
    b('publish -> listener received', toListener);
    b('publish -> signal accepted', toSignal);
    b('signal accepted -> visible in API', signalToVisible);

    agent.destroy();
  } finally {
    await listener?.stop();
    await api.close();
    await pubsub.subscription(h.config.pubsub.triggerSubscription).delete().catch(() => undefined);
    await pubsub.topic(h.config.pubsub.topic).delete().catch(() => undefined);
    await firestore.recursiveDelete(collection).catch(() => undefined);
    await h.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
