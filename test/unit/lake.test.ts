import assert from 'node:assert/strict';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { validateMessage, type Event, type RawMessage } from '../../core/events.js';
import {
  RAW_EVENTS_BQ_SCHEMA,
  batchHash,
  decodeNdjsonGz,
  encodeLinesGzAsync,
  encodeNdjsonGz,
  groupByArrivalHour,
  hourPrefix,
  ndjsonLine,
  quarantineObjectName,
  rawObjectName,
  splitBySize,
  toLakeRecord,
  toQuarantineRecord,
} from '../../core/lake.js';
import { makeHostileEvent, makeMalformed } from '../../demo/personas.js';

// Partitions must be UTC whatever the host's zone: run this file in one with an offset.
process.env.TZ = 'America/New_York';

const ids = ['9001', '9002', '9003', '9004'];
const arrival = new Date('2026-11-26T09:41:07.123Z');

describe('object names', () => {
  it('follow raw/events/v1/dt=YYYY-MM-DD/hour=HH/<sha256>.ndjson.gz', () => {
    assert.match(rawObjectName(arrival, ids), /^raw\/events\/v1\/dt=2026-11-26\/hour=09\/[0-9a-f]{64}\.ndjson\.gz$/);
    assert.match(quarantineObjectName(arrival, ids), /^quarantine\/events\/v1\/dt=2026-11-26\/hour=09\/[0-9a-f]{64}\.ndjson\.gz$/);
  });

  it('partition by the UTC hour, whatever the offset the Date was built from', () => {
    const lateEvening = new Date('2026-11-26T23:30:00-05:00');
    assert.match(rawObjectName(lateEvening, ids), /\/dt=2026-11-27\/hour=04\//);
  });

  it('are stable under permutation and duplication of message ids (a retried batch)', () => {
    const name = rawObjectName(arrival, ids);
    assert.equal(rawObjectName(arrival, [...ids].reverse()), name);
    assert.equal(rawObjectName(arrival, ['9003', '9001', '9004', '9002', '9001']), name);
    assert.equal(rawObjectName(new Date('2026-11-26T09:59:59.999Z'), ids), name, 'same hour, same name');
  });

  it('differ for different batches', () => {
    const name = rawObjectName(arrival, ids);
    assert.notEqual(rawObjectName(arrival, ids.slice(1)), name);
    assert.notEqual(rawObjectName(arrival, [...ids, '9005']), name);
    assert.notEqual(batchHash(['a,b']), batchHash(['a', 'b']));
    assert.notEqual(batchHash(['ab']), batchHash(['a', 'b']));
  });

  it('refuse an empty batch and an invalid date', () => {
    assert.throws(() => rawObjectName(arrival, []), /expected at least one message id/);
    assert.throws(() => rawObjectName(new Date('nope'), ids), /expected a valid Date/);
  });
});

describe('hourPrefix', () => {
  it('is the prefix of every object written for that hour', () => {
    const start = new Date('2026-11-26T09:00:00Z');
    assert.equal(hourPrefix(start), 'raw/events/v1/dt=2026-11-26/hour=09/');
    assert.equal(hourPrefix(start, 'quarantine'), 'quarantine/events/v1/dt=2026-11-26/hour=09/');
    assert.ok(rawObjectName(arrival, ids).startsWith(hourPrefix(start)));
    assert.ok(!rawObjectName(new Date('2026-11-26T10:00:00Z'), ids).startsWith(hourPrefix(start)));
  });

  it('refuses an interval start that is not on a whole hour', () => {
    assert.throws(() => hourPrefix(arrival), /expected a data interval starting on a whole UTC hour.*2026-11-26T09:00:00\.000Z/);
  });
});

describe('groupByArrivalHour', () => {
  it('splits a batch straddling an hour boundary, hours ascending, order kept', () => {
    const batch = [
      { id: 'a', at: new Date('2026-11-26T10:00:00.000Z') },
      { id: 'b', at: new Date('2026-11-26T09:59:59.999Z') },
      { id: 'c', at: new Date('2026-11-26T10:15:00.000Z') },
      { id: 'd', at: new Date('2026-11-26T09:00:00.000Z') },
    ];
    const groups = groupByArrivalHour(batch, (m) => m.at);
    assert.deepEqual(
      groups.map((g) => [g.hourStart.toISOString(), g.items.map((m) => m.id)]),
      [
        ['2026-11-26T09:00:00.000Z', ['b', 'd']],
        ['2026-11-26T10:00:00.000Z', ['a', 'c']],
      ],
    );
    const names = groups.map((g) =>
      rawObjectName(
        g.hourStart,
        g.items.map((m) => m.id),
      ),
    );
    assert.match(names[0] ?? '', /hour=09\//);
    assert.match(names[1] ?? '', /hour=10\//);
  });

  it('splits across midnight into different dt partitions', () => {
    const groups = groupByArrivalHour([new Date('2026-11-26T23:59:59Z'), new Date('2026-11-27T00:00:01Z')], (d) => d);
    assert.deepEqual(
      groups.map((g) => hourPrefix(g.hourStart)),
      ['raw/events/v1/dt=2026-11-26/hour=23/', 'raw/events/v1/dt=2026-11-27/hour=00/'],
    );
  });

  it('returns nothing for an empty batch', () => {
    assert.deepEqual(
      groupByArrivalHour([], (d: Date) => d),
      [],
    );
  });
});

const meta = {
  messageId: '9001',
  publishTime: new Date('2026-11-26T09:41:07.123Z'),
  receivedAt: new Date('2026-11-26T09:41:08.000Z'),
};

const event: Event = {
  event_id: '0B6F3A52-8C1E-4D57-9A0E-2F4C6D8E1A3B',
  customer_id: 'cust-000042',
  type: 'purchase',
  ts: '2026-11-26T10:45:00.5+01:00',
  properties: { order_id: 'ord-1', amount: 12.5, currency: 'USD', coupon: 'WINTER' },
};

describe('toLakeRecord', () => {
  it('stores properties as a JSON string, event time in UTC, and the arrival metadata', () => {
    const record = toLakeRecord(event, meta);
    assert.deepEqual(record, {
      event_id: '0b6f3a52-8c1e-4d57-9a0e-2f4c6d8e1a3b',
      customer_id: 'cust-000042',
      type: 'purchase',
      ts: '2026-11-26T09:45:00.500Z',
      properties: '{"order_id":"ord-1","amount":12.5,"currency":"USD","coupon":"WINTER"}',
      extra: null,
      message_id: '9001',
      publish_time: '2026-11-26T09:41:07.123Z',
      received_at: '2026-11-26T09:41:08.000Z',
    });
  });

  it('keeps unknown top-level fields in extra instead of dropping them', () => {
    const record = toLakeRecord({ ...event, session_id: 's-9', channel: null }, meta);
    assert.deepEqual(JSON.parse(record.extra ?? 'null'), { session_id: 's-9', channel: null });
  });

  it('has exactly the columns of the raw.events BigQuery schema', () => {
    assert.deepEqual(Object.keys(toLakeRecord(event, meta)).sort(), RAW_EVENTS_BQ_SCHEMA.map((f) => f.name).sort());
  });
});

describe('NDJSON gzip', () => {
  const now = new Date('2026-11-26T10:00:00Z');

  it('round-trips hostile events: one line per record, values intact', () => {
    const hostile = [makeHostileEvent(1, now), makeHostileEvent(2, now), event];
    const records = hostile.map((e) => toLakeRecord(e, meta));
    const gz = encodeNdjsonGz(records);
    const text = gunzipSync(gz).toString('utf8');
    assert.equal(text.split('\n').length, records.length + 1, 'a newline inside a value must not split a record');
    assert.deepEqual(decodeNdjsonGz(gz), records);
    const first = decodeNdjsonGz(gz)[0] as { properties: string };
    assert.deepEqual(JSON.parse(first.properties), hostile[0]?.properties);
  });

  it('is byte-stable, so a retried write uploads the same object', () => {
    const records = [toLakeRecord(event, meta)];
    assert.ok(encodeNdjsonGz(records).equals(encodeNdjsonGz(records)));
  });

  it('names the line that does not parse', () => {
    const gz = encodeNdjsonGz([{ a: 1 }]);
    const broken = Buffer.concat([gunzipSync(gz), Buffer.from('{oops\n')]);
    assert.throws(() => decodeNdjsonGz(gzipSync(broken)), /expected JSON on line 2/);
  });
});

describe('toQuarantineRecord', () => {
  const opts = { maxBytes: 1_048_576, maxFutureSkewMs: 300_000, now: new Date('2026-11-26T10:00:00Z') };

  it('keeps the raw bytes (base64), the attributes and every reason', () => {
    const message: RawMessage = makeMalformed('not_utf8', 3, opts);
    const result = validateMessage(message, opts);
    assert.equal(result.ok, false);
    if (result.ok) return;
    const record = toQuarantineRecord(message, result.reasons, meta.receivedAt);
    assert.ok(Buffer.from(record.data_base64, 'base64').equals(message.data));
    assert.equal(record.size_bytes, message.data.length);
    assert.deepEqual(JSON.parse(record.attributes), message.attributes);
    assert.deepEqual(
      record.reasons,
      result.reasons.map((r) => ({ code: r.code, path: r.path ?? null, message: r.message })),
    );
    assert.equal(record.publish_time, message.publishTime.toISOString());
    assert.equal(record.received_at, '2026-11-26T09:41:08.000Z');
  });

  it('refuses a message without reasons', () => {
    assert.throws(() => toQuarantineRecord(makeMalformed('not_json', 1, opts), [], meta.receivedAt), /has no reasons/);
  });
});

describe('splitBySize (a batch bigger than a lake object may be)', () => {
  const item = (id: string, bytes: number) => ({ id, bytes });
  const split = (items: Array<{ id: string; bytes: number }>, max: number) =>
    splitBySize(
      items,
      (i) => i.id,
      (i) => i.bytes,
      max,
    );
  const idsOf = (parts: ReturnType<typeof split>) => parts.map((p) => p.items.map((i) => i.id));

  it('keeps a batch that fits in one part, so its object name is the one of the whole batch', () => {
    const parts = split([item('b', 10), item('a', 20)], 30);
    assert.deepEqual(idsOf(parts), [['a', 'b']]);
    assert.equal(
      rawObjectName(
        arrival,
        parts[0]!.items.map((i) => i.id),
      ),
      rawObjectName(arrival, ['b', 'a']),
    );
  });

  it('packs every item exactly once into parts at most the limit', () => {
    const items = Array.from({ length: 200 }, (_, i) => item(`m${String(i).padStart(3, '0')}`, 7 + ((i * 37) % 90)));
    const parts = split(items, 300);
    assert.ok(parts.length > 1);
    for (const p of parts) {
      assert.ok(p.bytes <= 300, `part of ${p.bytes} bytes`);
      assert.equal(
        p.bytes,
        p.items.reduce((n, i) => n + i.bytes, 0),
      );
      assert.equal(p.oversized, false);
    }
    const all = parts.flatMap((p) => p.items.map((i) => i.id));
    assert.equal(all.length, items.length);
    assert.equal(new Set(all).size, items.length);
  });

  it('gives the same parts, hence the same object names, whatever order the messages came in (a retried batch)', () => {
    const items = Array.from({ length: 50 }, (_, i) => item(`id-${i}`, 10 + (i % 7)));
    const shuffled = [...items].sort((a, b) => ((a.bytes * 31 + a.id.length) % 11) - ((b.bytes * 31 + b.id.length) % 11));
    const names = (parts: ReturnType<typeof split>) =>
      parts.map((p) =>
        rawObjectName(
          arrival,
          p.items.map((i) => i.id),
        ),
      );
    assert.deepEqual(names(split(shuffled, 64)), names(split(items, 64)));
    assert.deepEqual(names(split([...items].reverse(), 64)), names(split(items, 64)));
  });

  it('puts a single item larger than the limit in a part of its own, marked oversized', () => {
    const parts = split([item('a', 5), item('b', 500), item('c', 5)], 100);
    assert.deepEqual(idsOf(parts), [['a', 'c'], ['b']]);
    const big = parts.find((p) => p.items.some((i) => i.id === 'b'))!;
    assert.deepEqual(
      big.items.map((i) => i.id),
      ['b'],
    );
    assert.equal(big.oversized, true);
    assert.ok(parts.filter((p) => p !== big).every((p) => !p.oversized && p.bytes <= 100));
  });

  it('returns nothing for an empty batch and refuses a limit that is not positive', () => {
    assert.deepEqual(split([], 10), []);
    assert.throws(() => split([item('a', 1)], 0), /expected a positive byte limit, found 0/);
    assert.throws(() => split([item('a', 1)], Number.NaN), /expected a positive byte limit/);
  });

  it('measures what an object holds: lines from ndjsonLine, compressed to the same bytes as encodeNdjsonGz', async () => {
    const records = [
      { a: 1, s: 'x\ny' },
      { a: 2, s: 'é' },
    ];
    const lines = records.map(ndjsonLine);
    assert.deepEqual(await encodeLinesGzAsync(lines), encodeNdjsonGz(records));
    assert.equal(
      lines.reduce((n, l) => n + Buffer.byteLength(l), 0),
      gunzipSync(encodeNdjsonGz(records)).length,
    );
  });
});
