/**
 * Segment-change webhooks delivered over real HTTP to a receiver on 127.0.0.1:0,
 * which verifies signatures exactly as a subscriber would.
 */
import { ApplicationFailure } from '@temporalio/common';
import { failureOf } from '../support/assertions.js';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createWebhookActivities, type SegmentChangeDelivery, type WebhookActivities } from '../../activities/webhooks.js';
import { createLogger } from '../../core/logger.js';
import { parseWebhookSubscribers } from '../../core/webhook-config.js';
import { verifyWebhook } from '../../core/webhook-signature.js';

const SECRET = 'whsec_integration_0123456789abcdef';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Answers with the queued statuses in turn (then 200), recording every request as raw bytes. */
let received: Received[] = [];
let script: Array<number | 'hang'> = [];
let server: Server;
let base: string;
const logLines: string[] = [];
let hooks: WebhookActivities;

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      const next = script.shift() ?? 200;
      if (next === 'hang') return; // never answers
      if (next === 302) res.setHeader('location', 'https://elsewhere.example/hook');
      if (next === 429) res.setHeader('retry-after', '7');
      res.writeHead(next, { 'content-type': 'text/plain' }).end(next >= 400 ? `failure ${next}` : 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const subscribers = parseWebhookSubscribers(
    JSON.stringify([
      { id: 'crm', url: `${base}/hooks/crm`, secret: SECRET, timeout_ms: 300 },
      { id: 'vip-desk', url: `${base}/hooks/vip`, secret: 'another-secret-0123456789', filter: { into: ['VIP'], out_of: ['VIP'] } },
    ]),
  );
  const logger = createLogger({ level: 'debug', name: 'test-webhooks' }, { write: (l: string) => void logLines.push(l) });
  hooks = createWebhookActivities({ subscribers, logger });
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  received = [];
  script = [];
});

const change: SegmentChangeDelivery = {
  deliveryId: 'reclassify/c-42/0b6f3a52-8c1e-4d57-9a0e-2f4c6d8e1a3b/crm',
  customerId: 'c-42',
  oldSegment: { id: 1, label: 'Occasional' },
  newSegment: { id: 3, label: 'VIP' },
  modelVersion: 'm-2026-11-25',
  occurredAt: '2026-11-26T09:15:00Z',
  subscriberId: 'crm',
};

/** What Temporal's retry policy does, minus the backoff: call again while the failure is retryable. */
async function deliverWithRetries(delivery: SegmentChangeDelivery, maxAttempts: number) {
  for (let attempt = 1; ; attempt++) {
    try {
      return { result: await hooks.deliverSegmentChange(delivery), attempts: attempt };
    } catch (err) {
      if (!(err instanceof ApplicationFailure) || err.nonRetryable || attempt >= maxAttempts) throw err;
    }
  }
}

describe('deliverSegmentChange', () => {
  it('POSTs the change once, signed so the receiver can verify it; a tampered body fails verification', async () => {
    const { result } = await deliverWithRetries(change, 1);
    assert.equal(result.delivered, true);
    assert.equal(result.status, 200);
    assert.equal(received.length, 1);
    const [req] = received;
    assert.equal(req!.path, '/hooks/crm');
    assert.equal(req!.headers['content-type'], 'application/json');
    assert.equal(req!.headers['segflow-delivery-id'], change.deliveryId);
    assert.deepEqual(JSON.parse(req!.body.toString('utf8')), {
      delivery_id: change.deliveryId,
      customer_id: 'c-42',
      old_segment: { id: 1, label: 'Occasional' },
      new_segment: { id: 3, label: 'VIP' },
      old_parent_segment: null,
      new_parent_segment: null,
      model_version: 'm-2026-11-25',
      occurred_at: '2026-11-26T09:15:00Z',
    });

    const header = req!.headers['segflow-signature'] as string;
    assert.match(header, /^t=\d{10},v1=[0-9a-f]{64}$/);
    assert.equal(verifyWebhook({ secrets: SECRET, header, body: req!.body }).ok, true);

    const tampered = Buffer.from(req!.body.toString('utf8').replace('"id":3', '"id":4'));
    assert.deepEqual(verifyWebhook({ secrets: SECRET, header, body: tampered }), { ok: false, reason: 'signature_mismatch' });
    assert.equal(verifyWebhook({ secrets: 'not-the-subscriber-secret', header, body: req!.body }).ok, false);
    assert.deepEqual(verifyWebhook({ secrets: SECRET, header, body: req!.body, now: Math.floor(Date.now() / 1000) + 3600 }), {
      ok: false,
      reason: 'timestamp_out_of_tolerance',
    });
  });

  it('carries the previous and current parent segment, also when only the parent changed', async () => {
    const vip = { id: 3, label: 'VIP' };
    const parentChange: SegmentChangeDelivery = {
      ...change,
      oldSegment: { ...vip, parent: { id: 1, label: 'engaged' } },
      newSegment: { ...vip, parent: { id: 3, label: 'high-value loyal' } },
    };
    const { result } = await deliverWithRetries(parentChange, 1);
    assert.equal(result.delivered, true);
    const body = JSON.parse(received[0]!.body.toString('utf8')) as Record<string, unknown>;
    assert.deepEqual(
      [body.old_segment, body.new_segment, body.old_parent_segment, body.new_parent_segment],
      [vip, vip, { id: 1, label: 'engaged' }, { id: 3, label: 'high-value loyal' }],
    );
  });

  it('a receiver answering 500 then 200 gets the same delivery again, and accepts it', async () => {
    script = [500, 200];
    const { result, attempts } = await deliverWithRetries(change, 5);
    assert.deepEqual([result.delivered, attempts, received.length], [true, 2, 2]);
    assert.deepEqual(received[0]!.body, received[1]!.body);
    assert.equal(received[0]!.headers['segflow-delivery-id'], received[1]!.headers['segflow-delivery-id']);
    for (const r of received)
      assert.equal(verifyWebhook({ secrets: SECRET, header: r.headers['segflow-signature'] as string, body: r.body }).ok, true);
  });

  it('5xx, 408, 429 and timeouts are retryable; 429 passes Retry-After on', async () => {
    for (const status of [500, 502, 503, 408, 429]) {
      script = [status];
      const failure = await failureOf(hooks.deliverSegmentChange(change), 'the delivery to fail');
      assert.equal(failure.nonRetryable, false, `HTTP ${status}`);
      assert.equal(failure.type, 'WebhookDeliveryFailed');
      assert.match(failure.message, new RegExp(`HTTP ${status}: failure ${status}`));
      if (status === 429) assert.equal(failure.nextRetryDelay, 7_000);
    }
    script = ['hang'];
    const timedOut = await failureOf(hooks.deliverSegmentChange(change), 'the delivery to fail');
    assert.equal(timedOut.nonRetryable, false);
    assert.match(timedOut.message, /no response within 300 ms/);
  });

  it('a receiver that is not listening is a retryable failure', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const gone = createWebhookActivities({
      subscribers: parseWebhookSubscribers(JSON.stringify([{ id: 'crm', url: `http://127.0.0.1:${port}/x`, secret: SECRET }])),
      logger: createLogger({ level: 'silent' }),
    });
    const failure = await failureOf(gone.deliverSegmentChange(change));
    assert.equal(failure.nonRetryable, false);
    assert.match(failure.message, /ECONNREFUSED/);
  });

  it('other 4xx and redirects fail for good (non-retryable)', async () => {
    for (const status of [400, 401, 404, 410, 302]) {
      script = [status];
      const failure = await failureOf(hooks.deliverSegmentChange(change), 'the delivery to fail');
      assert.equal(failure.nonRetryable, true, `HTTP ${status}`);
      assert.equal(failure.type, 'WebhookRejected');
    }
    assert.equal(received.length, 5, 'a redirect was followed');
  });

  it('respects subscriber filters and refuses unknown subscribers and invalid input', async () => {
    const notVip = { ...change, subscriberId: 'vip-desk', oldSegment: { id: 0, label: 'New' }, newSegment: { id: 1, label: 'Occasional' } };
    const skipped = await hooks.deliverSegmentChange(notVip);
    assert.deepEqual([skipped.delivered, skipped.skipped, received.length], [false, 'filtered', 0]);
    const vip = await hooks.deliverSegmentChange({ ...change, subscriberId: 'vip-desk' });
    assert.equal(vip.delivered, true);
    assert.equal(received[0]!.path, '/hooks/vip');
    assert.equal(
      verifyWebhook({
        secrets: 'another-secret-0123456789',
        header: received[0]!.headers['segflow-signature'] as string,
        body: received[0]!.body,
      }).ok,
      true,
    );
    assert.deepEqual(await hooks.subscribersForSegmentChange({ oldSegment: null, newSegment: { id: 3, label: 'VIP' } }), [
      'crm',
      'vip-desk',
    ]);
    assert.deepEqual(await hooks.subscribersForSegmentChange({ oldSegment: null, newSegment: { id: 1, label: 'Occasional' } }), ['crm']);

    const unknown = await failureOf(hooks.deliverSegmentChange({ ...change, subscriberId: 'nobody' }));
    assert.deepEqual([unknown.nonRetryable, unknown.type], [true, 'UnknownWebhookSubscriber']);
    const invalid = await failureOf(hooks.deliverSegmentChange({ ...change, customerId: '../x', deliveryId: 'a\r\nInjected: 1' }));
    assert.deepEqual([invalid.nonRetryable, invalid.type], [true, 'InvalidWebhookDelivery']);
    assert.match(invalid.message, /customerId: expected 1-128 characters/);
    assert.match(invalid.message, /deliveryId/);
    assert.equal(received.length, 1);
  });

  it('never logs the secret or the signature', () => {
    const text = logLines.join('');
    assert.ok(text.includes('webhook delivered'));
    assert.ok(!text.includes(SECRET) && !text.includes('another-secret-0123456789'));
    assert.ok(!/v1=[0-9a-f]{64}/.test(text));
  });
});
