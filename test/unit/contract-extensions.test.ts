import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseContractExtensions } from '../../core/contract-extensions.js';
import { buildEventContract, renderEventJsonSchema, validateMessage, type RawMessage } from '../../core/events.js';
import { createReasonTally } from '../../core/reason-tally.js';
import { createLogger } from '../../core/logger.js';

const now = new Date('2026-11-26T10:00:00Z');
const profileUpdate = (properties: object): RawMessage => ({
  data: Buffer.from(
    JSON.stringify({
      event_id: '0b6f3a52-8c1e-4d57-9a0e-2f4c6d8e1a3b',
      customer_id: 'cust-1',
      type: 'profile_update',
      ts: '2026-11-26T09:00:00Z',
      properties,
    }),
  ),
  attributes: { type: 'profile_update' },
  publishTime: now,
  messageId: '1',
});
const opts = { maxBytes: 65_536, maxFutureSkewMs: 0, now };

function extensions(json: string) {
  const parsed = parseContractExtensions(json);
  assert.ok(parsed.ok, JSON.stringify(parsed));
  return parsed.value;
}

describe('contract extensions', () => {
  it('an extra income band is refused by v1 and accepted once configured; other values still refused', () => {
    const before = validateMessage(profileUpdate({ income_band: 'mid' }), opts);
    assert.equal(before.ok, false);
    const contract = buildEventContract(extensions('{"enumValues": {"profile_update.income_band": ["mid"]}}'));
    assert.equal(validateMessage(profileUpdate({ income_band: 'mid' }), { ...opts, contract }).ok, true);
    assert.equal(validateMessage(profileUpdate({ income_band: 'middle' }), { ...opts, contract }).ok, true);
    const other = validateMessage(profileUpdate({ income_band: 'huge' }), { ...opts, contract });
    assert.ok(!other.ok && other.reasons[0]?.message.includes('mid'), JSON.stringify(other));
  });

  it('a longer maximum length applies to that property only, and shows in the JSON Schema', () => {
    const contract = buildEventContract(extensions('{"maxLength": {"profile_update.city": 300}}'));
    assert.equal(validateMessage(profileUpdate({ city: 'x'.repeat(200) }), opts).ok, false);
    assert.equal(validateMessage(profileUpdate({ city: 'x'.repeat(200) }), { ...opts, contract }).ok, true);
    assert.equal(validateMessage(profileUpdate({ gender: 'x'.repeat(200) }), { ...opts, contract }).ok, false);
    assert.match(renderEventJsonSchema(contract), /"maxLength": 300/);
    assert.doesNotMatch(renderEventJsonSchema(), /"maxLength": 300/);
  });

  it('refuses unknown properties, narrowing and bad JSON with a message each', () => {
    for (const bad of ['{"enumValues": {"purchase.currency": ["X"]}}', '{"maxLength": {"profile_update.city": 10}}', '{', '{"other": 1}']) {
      const parsed = parseContractExtensions(bad);
      assert.equal(parsed.ok, false, bad);
    }
  });
});

describe('reason tally', () => {
  it('3,000 invalid messages in one interval give two log lines: the first message and the counts', () => {
    const lines: Array<{ level: string; msg: string; reasons?: unknown; messages?: number }> = [];
    const stream = { write: (s: string) => void lines.push(JSON.parse(s) as (typeof lines)[number]) };
    const logger = createLogger({ level: 'info', name: 't' }, stream);
    let t = 0;
    const tally = createReasonTally(logger, 'invalid', { timer: false, now: () => t, intervalMs: 60_000 });
    for (let i = 0; i < 3000; i += 1) {
      t += 10;
      tally.add(i % 3 === 0 ? ['invalid_value', 'missing_field'] : ['invalid_value'], { messageId: String(i) });
    }
    tally.close();
    assert.equal(lines.length, 2);
    assert.equal(lines[1]?.messages, 3000);
    assert.deepEqual(lines[1]?.reasons, { invalid_value: 3000, missing_field: 1000 });
  });
});
