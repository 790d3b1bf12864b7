import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import {
  COUNTRY_CODES,
  EVENT_TYPES,
  REASON_CODES,
  TRIGGER_SUBSCRIPTION_FILTER,
  TRIGGER_TYPES,
  encodeEvent,
  isTriggerType,
  renderEventJsonSchema,
  validateMessage,
  type RawMessage,
  type Reason,
  type ValidateOptions,
  type ValidationResult,
} from '../../core/events.js';
import { HOSTILE_STRINGS, makeHostileEvent, makeMalformed } from '../../demo/personas.js';

const now = new Date('2026-11-26T10:00:00Z');
const opts: ValidateOptions = { maxBytes: 1_048_576, maxFutureSkewMs: 5 * 60_000, now };

const purchase = {
  event_id: '0b6f3a52-8c1e-4d57-9a0e-2f4c6d8e1a3b',
  customer_id: 'cust-000042',
  type: 'purchase',
  ts: '2026-11-26T10:45:00+01:00',
  properties: { order_id: 'ord-1', amount: 129.9, currency: 'EUR' },
};

function message(body: unknown, attributes: Record<string, string> = {}): RawMessage {
  const data = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
  return { data, attributes, publishTime: now, messageId: '1001' };
}

function reasonsOf(result: ValidationResult): Reason[] {
  assert.equal(result.ok, false, 'expected the message to be refused');
  return result.ok ? [] : result.reasons;
}

function accepted(result: ValidationResult) {
  if (!result.ok) assert.fail(`expected the message to be accepted, got ${JSON.stringify(result.reasons, null, 2)}`);
  return result.event;
}

describe('validateMessage: valid events', () => {
  it('accepts a purchase with an offset timestamp and types its properties', () => {
    const event = accepted(validateMessage(message(purchase, { type: 'purchase', event_id: purchase.event_id, schema: 'v1' }), opts));
    assert.equal(event.type, 'purchase');
    if (event.type === 'purchase') assert.equal(event.properties.amount, 129.9);
  });

  it('keeps unknown fields and accepts null for optional ones (schema evolution)', () => {
    const body = {
      ...purchase,
      session_id: 's-1',
      properties: { ...purchase.properties, coupon: null, basket: { items: 3 } },
    };
    const event = accepted(validateMessage(message(body), opts));
    assert.equal(event.session_id, 's-1');
    assert.deepEqual(event.properties.basket, { items: 3 });
    assert.equal(event.properties.coupon, null);

    const click = { ...purchase, type: 'click', properties: { url: 'https://shop.example.com/', element: null } };
    accepted(validateMessage(message(click), opts));
  });

  it('treats a missing type attribute as absent, not as a mismatch', () => {
    accepted(validateMessage(message(purchase, {}), opts));
  });

  it('accepts a timestamp exactly at the skew limit and refuses one a millisecond later', () => {
    const atLimit = new Date(now.getTime() + opts.maxFutureSkewMs).toISOString();
    accepted(validateMessage(message({ ...purchase, ts: atLimit }), opts));
    const beyond = new Date(now.getTime() + opts.maxFutureSkewMs + 1).toISOString();
    const reasons = reasonsOf(validateMessage(message({ ...purchase, ts: beyond }), opts));
    assert.deepEqual(
      reasons.map((r) => [r.code, r.path]),
      [['future_timestamp', 'ts']],
    );
  });

  for (const ts of ['2026-11-26T09:00:00Z', '2026-11-26T09:00:00.123456Z', '2026-11-26T04:00:00-05:00', '2024-02-29T00:00:00Z']) {
    it(`accepts RFC 3339 timestamp ${ts}`, () => {
      accepted(validateMessage(message({ ...purchase, ts }), opts));
    });
  }

  for (const ts of [
    '2026-11-26T09:00:00',
    '2026-11-26 09:00:00Z',
    '2026-11-26T09:00Z',
    '2025-02-29T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '1764148500',
  ]) {
    it(`refuses non-RFC 3339 timestamp ${ts} with bad_timestamp`, () => {
      const reasons = reasonsOf(validateMessage(message({ ...purchase, ts }), opts));
      assert.deepEqual(
        reasons.map((r) => [r.code, r.path]),
        [['bad_timestamp', 'ts']],
      );
    });
  }
});

describe('validateMessage: malformed messages', () => {
  for (const kind of REASON_CODES) {
    it(`makeMalformed('${kind}') yields exactly reason ${kind} for every variant`, () => {
      for (let seed = 0; seed < 12; seed += 1) {
        const reasons = reasonsOf(validateMessage(makeMalformed(kind, seed, opts), opts));
        assert.deepEqual(
          reasons.map((r) => r.code),
          [kind],
          `seed ${seed}: ${JSON.stringify(reasons)}`,
        );
      }
    });
  }

  it('records every problem, each with its path, not just the first', () => {
    const body = {
      event_id: 'not-a-uuid',
      customer_id: "x'); DROP TABLE raw.events;--",
      type: 'purchase',
      ts: '2026-11-26 09:00',
      properties: { order_id: '', amount: '12.50', currency: 'usd' },
    };
    const reasons = reasonsOf(validateMessage(message(body, { type: 'page_view', schema: 'v2' }), opts));
    assert.deepEqual(reasons.map((r) => `${r.code}@${r.path ?? ''}`).sort(), [
      'attribute_mismatch@attributes.type',
      'bad_timestamp@ts',
      'invalid_type@properties.amount',
      'invalid_value@customer_id',
      'invalid_value@event_id',
      'invalid_value@properties.currency',
      'invalid_value@properties.order_id',
      'unsupported_schema@attributes.schema',
    ]);
  });

  it('checks the other fields of an event whose type is unknown', () => {
    const body = { type: 'refund', customer_id: 'c 1', ts: '2030-01-01T00:00:00Z', properties: {} };
    const reasons = reasonsOf(validateMessage(message(body, { type: 'refund' }), opts));
    assert.deepEqual(reasons.map((r) => `${r.code}@${r.path ?? ''}`).sort(), [
      'future_timestamp@ts',
      'invalid_value@customer_id',
      'missing_field@event_id',
      'unknown_type@type',
    ]);
  });

  it('reports a non-string type once, as unknown_type', () => {
    const reasons = reasonsOf(validateMessage(message({ ...purchase, type: 5 }), opts));
    assert.deepEqual(
      reasons.map((r) => `${r.code}@${r.path ?? ''}`),
      ['unknown_type@type'],
    );
  });

  it('reports a missing type as a missing field', () => {
    const { type: _type, ...body } = purchase;
    const reasons = reasonsOf(validateMessage(message(body), opts));
    assert.deepEqual(
      reasons.map((r) => `${r.code}@${r.path ?? ''}`),
      ['missing_field@type'],
    );
  });

  it('still checks the content of an oversized message', () => {
    const reasons = reasonsOf(validateMessage(message({ ...purchase, ts: 'yesterday' }), { ...opts, maxBytes: 10 }));
    assert.deepEqual(reasons.map((r) => r.code).sort(), ['bad_timestamp', 'too_large']);
  });

  it('says what was expected and what was found', () => {
    const all = REASON_CODES.flatMap((kind) => reasonsOf(validateMessage(makeMalformed(kind, 1, opts), opts)));
    for (const reason of all) {
      assert.match(reason.message, /^expected .+, found .+/s, `${reason.code}: ${reason.message}`);
    }
    const [amount] = reasonsOf(validateMessage(message({ ...purchase, properties: { ...purchase.properties, amount: -5 } }), opts));
    assert.equal(amount?.message, 'expected an amount >= 0, found a number -5');
  });

  it('points at the first byte that is not UTF-8', () => {
    const data = Buffer.concat([Buffer.from('{"a":"h'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    const [reason] = reasonsOf(validateMessage(message(data), opts));
    assert.equal(reason?.code, 'not_utf8');
    assert.match(reason?.message ?? '', /at byte 7$/);
  });

  it('refuses nesting deep enough to overflow JSON.stringify, without throwing', () => {
    const depth = 100_000;
    const data = `{"properties":{"x":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
    const reasons = reasonsOf(validateMessage(message(data), opts));
    assert.ok(reasons.some((r) => r.code === 'too_deep'));
  });
});

describe('validateMessage: hostile input', () => {
  it('refuses every hostile string as a customer id, with a short, single-line message', () => {
    for (const hostile of HOSTILE_STRINGS) {
      const reasons = reasonsOf(validateMessage(message({ ...purchase, customer_id: hostile }), opts));
      assert.deepEqual(
        reasons.map((r) => `${r.code}@${r.path ?? ''}`),
        ['invalid_value@customer_id'],
        JSON.stringify(hostile),
      );
      const text = reasons[0]?.message ?? '';
      assert.ok(text.length < 300, `message too long: ${text.length}`);
      // eslint-disable-next-line no-control-regex -- the assertion is that no raw control character gets through
      assert.doesNotMatch(text, /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/);
    }
  });

  it("refuses customer ids Firestore reserves ('.', '..', '__name__')", () => {
    for (const customer_id of ['.', '..', '__name__', '', 'a/b', 'x'.repeat(129)]) {
      const reasons = reasonsOf(validateMessage(message({ ...purchase, customer_id }), opts));
      assert.deepEqual(
        reasons.map((r) => r.path),
        ['customer_id'],
        customer_id,
      );
    }
    accepted(validateMessage(message({ ...purchase, customer_id: 'x'.repeat(128) }), opts));
  });

  it('accepts hostile free text where the contract allows it and keeps it intact', () => {
    const hostile = makeHostileEvent(7, now);
    const event = accepted(validateMessage(message(hostile), opts));
    assert.deepEqual(event, hostile);
  });

  it('does not let a __proto__ key pollute prototypes', () => {
    const data =
      `{"event_id":"${purchase.event_id}","customer_id":"c1","type":"purchase","ts":"2026-11-26T09:00:00Z",` +
      '"properties":{"order_id":"o","amount":1,"currency":"USD","__proto__":{"polluted":true}},"__proto__":{"polluted":true}}';
    const event = accepted(validateMessage(message(data), opts));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.getPrototypeOf(event), Object.prototype);
    assert.equal(Object.getPrototypeOf(event.properties), Object.prototype);
  });
});

describe('encodeEvent', () => {
  it('round-trips through validateMessage with type, event_id and schema attributes', () => {
    const encoded = encodeEvent({ ...purchase, type: 'purchase' });
    assert.deepEqual(encoded.attributes, { type: 'purchase', event_id: purchase.event_id, schema: 'v1' });
    const event = accepted(validateMessage({ data: encoded.data, attributes: encoded.attributes, publishTime: now, messageId: '1' }, opts));
    assert.deepEqual(event, purchase);
  });

  it('refuses an invalid event and names the field', () => {
    assert.throws(
      () => encodeEvent({ ...purchase, type: 'purchase', properties: { order_id: 'o', amount: -1, currency: 'USD' } }),
      /properties\.amount: expected an amount >= 0, found a number -1/,
    );
  });
});

describe('contract constants', () => {
  it('trigger types are purchase and profile_update, and the filter selects exactly them', () => {
    assert.deepEqual([...TRIGGER_TYPES].sort(), ['profile_update', 'purchase']);
    assert.ok([...TRIGGER_TYPES].every((t) => (EVENT_TYPES as readonly string[]).includes(t)));
    assert.equal(TRIGGER_SUBSCRIPTION_FILTER, 'attributes.type = "purchase" OR attributes.type = "profile_update"');
    assert.equal(isTriggerType('purchase'), true);
    assert.equal(isTriggerType('page_view'), false);
    assert.equal(isTriggerType('refund'), false);
  });

  it('country codes are the 249 ISO 3166-1 alpha-2 codes', () => {
    assert.equal(new Set(COUNTRY_CODES).size, 249);
    const names = new Intl.DisplayNames(['en'], { type: 'region', fallback: 'none' });
    for (const code of COUNTRY_CODES) assert.ok(names.of(code), `${code} is not a region`);
  });
});

describe('JSON Schema for producers', () => {
  it('the committed schemas/event-v1.schema.json equals a fresh generation', async () => {
    const committed = await readFile(new URL('../../schemas/event-v1.schema.json', import.meta.url), 'utf8');
    assert.equal(committed, renderEventJsonSchema(), 'stale: run `tsx scripts/gen-event-schema.ts`');
  });

  it('describes one variant per event type', () => {
    const schema = JSON.parse(renderEventJsonSchema()) as { oneOf: Array<{ properties: { type: { const: string } } }> };
    assert.deepEqual(
      schema.oneOf.map((v) => v.properties.type.const),
      [...EVENT_TYPES],
    );
  });
});
