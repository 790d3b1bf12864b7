import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { filterMatches, parseWebhookSubscribers, subscribersForChange, WebhookConfigError } from '../../core/webhook-config.js';
import {
  computeSignature,
  DEFAULT_TOLERANCE_SECONDS,
  parseSignatureHeader,
  signWebhook,
  verifyWebhook,
} from '../../core/webhook-signature.js';

const SECRET = 'whsec_0123456789abcdef0123456789';
const BODY = '{"delivery_id":"d-1","customer_id":"c-1","old_segment":null,"new_segment":{"id":2,"label":"VIP"}}';
const T = 1_800_000_000;

describe('webhook signatures', () => {
  it('follows the documented construction: t=<unix seconds>,v1=hex(HMAC-SHA256(secret, `${t}.${body}`))', () => {
    // Computed here from the spec, not through the module, so a change of construction fails.
    const expected = createHmac('sha256', SECRET).update(`${T}.${BODY}`).digest('hex');
    assert.equal(signWebhook(SECRET, BODY, { timestamp: T }), `t=${T},v1=${expected}`);
    assert.equal(computeSignature(SECRET, T, Buffer.from(BODY)), expected);
  });

  it('verifies its own signature, from a string or from the raw bytes', () => {
    const header = signWebhook(SECRET, BODY, { timestamp: T });
    assert.deepEqual(verifyWebhook({ secrets: SECRET, header, body: BODY, now: T }), { ok: true, timestamp: T });
    assert.equal(verifyWebhook({ secrets: SECRET, header, body: Buffer.from(BODY), now: T + 10 }).ok, true);
  });

  it('rejects a tampered body, a wrong secret and a re-used signature with another timestamp', () => {
    const header = signWebhook(SECRET, BODY, { timestamp: T });
    const tampered = BODY.replace('"id":2', '"id":3');
    assert.deepEqual(verifyWebhook({ secrets: SECRET, header, body: tampered, now: T }), { ok: false, reason: 'signature_mismatch' });
    assert.deepEqual(verifyWebhook({ secrets: 'another-secret-entirely', header, body: BODY, now: T }), {
      ok: false,
      reason: 'signature_mismatch',
    });
    const moved = header.replace(`t=${T}`, `t=${T + 60}`);
    assert.deepEqual(verifyWebhook({ secrets: SECRET, header: moved, body: BODY, now: T + 60 }), {
      ok: false,
      reason: 'signature_mismatch',
    });
  });

  it('rejects replays outside the tolerance window, in either direction', () => {
    const header = signWebhook(SECRET, BODY, { timestamp: T });
    const at = (now: number, toleranceSeconds?: number) => verifyWebhook({ secrets: SECRET, header, body: BODY, now, toleranceSeconds });
    assert.equal(at(T + DEFAULT_TOLERANCE_SECONDS).ok, true);
    assert.deepEqual(at(T + DEFAULT_TOLERANCE_SECONDS + 1), { ok: false, reason: 'timestamp_out_of_tolerance' });
    assert.deepEqual(at(T - DEFAULT_TOLERANCE_SECONDS - 1), { ok: false, reason: 'timestamp_out_of_tolerance' });
    assert.deepEqual(at(T + 31, 30), { ok: false, reason: 'timestamp_out_of_tolerance' });
  });

  it('supports secret rotation: several v1 values, any configured secret may match', () => {
    const header = signWebhook(['new-secret-value-1234', SECRET], BODY, { timestamp: T });
    assert.equal(parseSignatureHeader(header)?.signatures.length, 2);
    assert.equal(verifyWebhook({ secrets: SECRET, header, body: BODY, now: T }).ok, true);
    assert.equal(verifyWebhook({ secrets: ['new-secret-value-1234'], header, body: BODY, now: T }).ok, true);
    assert.equal(verifyWebhook({ secrets: ['old-and-gone-secret'], header, body: BODY, now: T }).ok, false);
  });

  it('treats missing and malformed headers as failures, ignoring unknown schemes', () => {
    const sig = computeSignature(SECRET, T, BODY);
    const check = (header: string | undefined) => verifyWebhook({ secrets: SECRET, header, body: BODY, now: T });
    assert.deepEqual(check(undefined), { ok: false, reason: 'missing_header' });
    assert.deepEqual(check(''), { ok: false, reason: 'missing_header' });
    for (const bad of [
      `v1=${sig}`, // no timestamp
      `t=${T}`, // no signature
      `t=${T},v1=${sig.slice(0, 40)}`, // short
      `t=${T},v1=${sig.toUpperCase()}`, // not lower-case hex
      `t=${T},t=${T},v1=${sig}`, // two timestamps
      `t=-5,v1=${sig}`,
      `t=${T};v1=${sig}`,
      'garbage',
      `t=${T},v1=${'a'.repeat(5000)}`,
    ]) {
      assert.deepEqual(check(bad), { ok: false, reason: 'malformed_header' }, bad.slice(0, 60));
    }
    assert.equal(check(`t=${T}, v0=deadbeef, v1=${sig}`).ok, true);
  });

  it('refuses to sign with no secret or a non-integer timestamp', () => {
    assert.throws(() => signWebhook([], BODY), /at least one non-empty secret/);
    assert.throws(() => signWebhook('', BODY), /at least one non-empty secret/);
    assert.throws(() => computeSignature(SECRET, 1.5, BODY), /whole unix seconds/);
  });
});

describe('webhook subscribers configuration', () => {
  const ok = { id: 'crm', url: 'https://crm.example.com/hooks', secret: 'x'.repeat(32) };

  it('parses a JSON array, with "*" and a 10 s timeout by default', () => {
    assert.deepEqual(parseWebhookSubscribers(JSON.stringify([ok])), [{ ...ok, filter: '*', timeout_ms: 10_000 }]);
    assert.deepEqual(parseWebhookSubscribers(undefined), []);
    assert.deepEqual(parseWebhookSubscribers('  '), []);
  });

  it('names every problem, never echoing a secret', () => {
    const raw = JSON.stringify([
      { ...ok, secret: 'short-secret' },
      { ...ok, url: 'ftp://x', filter: { into: [] } },
      { ...ok, extra: 1 },
    ]);
    const err = (() => {
      try {
        parseWebhookSubscribers(raw);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof WebhookConfigError);
    const text = err.problems.join('\n');
    assert.match(text, /SEGFLOW_WEBHOOKS\[0\]\.secret: expected a secret of at least 16 characters/);
    assert.match(text, /SEGFLOW_WEBHOOKS\[1\]\.url: expected an absolute http\(s\) URL/);
    assert.match(text, /SEGFLOW_WEBHOOKS\[1\]\.filter/);
    assert.match(text, /SEGFLOW_WEBHOOKS\[2\]/);
    assert.doesNotMatch(text, /short-secret/);
  });

  it('rejects invalid JSON without quoting it, duplicate ids, and http:// when https is required', () => {
    assert.throws(
      () => parseWebhookSubscribers('[{"id":"crm","secret":"sup3r-secret-value-here",'),
      (e: Error) => /not valid JSON/.test(e.message) && !e.message.includes('sup3r'),
    );
    assert.throws(() => parseWebhookSubscribers(JSON.stringify({ ...ok })), /expected a JSON array of subscribers/);
    assert.throws(() => parseWebhookSubscribers(JSON.stringify([ok, ok])), /unique subscriber id; "crm" appears more than once/);
    const plain = JSON.stringify([{ ...ok, url: 'http://127.0.0.1:9/x' }]);
    assert.equal(parseWebhookSubscribers(plain).length, 1);
    assert.throws(() => parseWebhookSubscribers(plain, { requireHttps: true }), /expected an https:\/\/ URL in production/);
  });

  it('filters changes into or out of segments, by id or by label', () => {
    const vip = { id: 3, label: 'VIP' };
    const lapsing = { id: 1, label: 'Lapsing' };
    const other = { id: 0, label: 'New' };
    assert.equal(filterMatches('*', null, other), true);
    assert.equal(filterMatches({ into: ['VIP'] }, other, vip), true);
    assert.equal(filterMatches({ into: [3] }, other, vip), true);
    assert.equal(filterMatches({ into: ['VIP'] }, vip, other), false);
    assert.equal(filterMatches({ out_of: ['VIP'] }, vip, other), true);
    assert.equal(filterMatches({ out_of: ['VIP'] }, null, vip), false);
    assert.equal(filterMatches({ into: [1], out_of: [3] }, other, lapsing), true);
    const subs = parseWebhookSubscribers(
      JSON.stringify([
        { ...ok, id: 'all' },
        { ...ok, id: 'vip-only', filter: { into: ['VIP'], out_of: ['VIP'] } },
      ]),
    );
    assert.deepEqual(
      subscribersForChange(subs, lapsing, other).map((s) => s.id),
      ['all'],
    );
    assert.deepEqual(
      subscribersForChange(subs, lapsing, vip).map((s) => s.id),
      ['all', 'vip-only'],
    );
  });
});
