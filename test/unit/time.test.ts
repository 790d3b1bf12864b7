import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatInstant, MS_PER_UNIT, parseDuration, parseInstant } from '../../core/time.js';

describe('durations', () => {
  it('reads a number and a unit', () => {
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('20m'), 20 * MS_PER_UNIT.m);
    assert.equal(parseDuration('2h'), 7_200_000);
    assert.equal(parseDuration('1d'), MS_PER_UNIT.d);
  });

  it('gives NaN for anything else, so the caller can name the setting', () => {
    for (const text of ['2 hours', '5', 'm', '-1s', '1w', '']) assert.ok(Number.isNaN(parseDuration(text)), text);
  });
});

describe('RFC 3339 instants', () => {
  it('parses instants with an offset', () => {
    assert.equal(parseInstant('2026-11-26T09:00:00Z'), Date.UTC(2026, 10, 26, 9));
    assert.equal(parseInstant('2026-11-26T10:00:00+01:00'), Date.UTC(2026, 10, 26, 9));
    assert.equal(parseInstant('2026-11-26T09:00:00.250z'), Date.UTC(2026, 10, 26, 9) + 250);
  });

  it('refuses instants that depend on the local time zone, and non-dates', () => {
    for (const text of ['2026-11-26T09:00:00', '2026-11-26', 'yesterday', '2026-13-01T00:00:00Z'])
      assert.ok(Number.isNaN(parseInstant(text)), text);
  });

  it('formats in UTC to the second, keeping milliseconds when there are some', () => {
    assert.equal(formatInstant(Date.UTC(2026, 10, 26, 9)), '2026-11-26T09:00:00Z');
    assert.equal(formatInstant(new Date(Date.UTC(2026, 10, 26, 9) + 5)), '2026-11-26T09:00:00.005Z');
  });
});
