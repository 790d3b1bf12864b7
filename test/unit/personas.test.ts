import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeEvent, validateMessage, type Event, type ValidateOptions } from '../../core/events.js';
import {
  PERSONAS,
  PERSONA_BEHAVIOUR,
  generateEvents,
  makeMalformed,
  makePopulation,
  type Customer,
  type Persona,
} from '../../demo/personas.js';

const from = new Date('2026-10-01T00:00:00Z');
const to = new Date('2026-10-31T00:00:00Z');
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const population = makePopulation(1500, 42);
const events = [...generateEvents(population, { from, to, seed: 7 })];

describe('seeded randomness', () => {
  it('never repeats an event id, though customers draw from overlapping generators', () => {
    // Each customer has its own mulberry32 generator, and all of them walk one 2^32-state cycle:
    // uuids built from the bare words would repeat within these events.
    const seen = new Set<string>();
    let n = 0;
    for (const e of generateEvents(makePopulation(10_000, 42), { from, to, seed: 42 })) {
      seen.add(e.event_id);
      if (++n === 200_000) break;
    }
    assert.equal(n, 200_000);
    assert.equal(seen.size, n);
  });
});

describe('makePopulation', () => {
  it('is deterministic and a larger population extends a smaller one', () => {
    assert.deepEqual(makePopulation(50, 42), population.slice(0, 50));
    assert.notDeepEqual(makePopulation(50, 43), population.slice(0, 50));
  });

  it('draws personas in their configured shares', () => {
    for (const persona of PERSONAS) {
      const share = population.filter((c) => c.persona === persona).length / population.length;
      const expected = PERSONA_BEHAVIOUR[persona].share;
      assert.ok(Math.abs(share - expected) < 0.04, `${persona}: ${share} vs ${expected}`);
    }
  });

  it('gives unique, valid customer ids', () => {
    assert.equal(new Set(population.map((c) => c.customer_id)).size, population.length);
  });
});

describe('generateEvents', () => {
  it('yields only events that pass v1 validation', () => {
    const opts: ValidateOptions = { maxBytes: 65_536, maxFutureSkewMs: 0, now: to };
    for (const event of events) {
      const { data, attributes } = encodeEvent(event);
      const result = validateMessage({ data, attributes, publishTime: to, messageId: 'm' }, opts);
      if (!result.ok) assert.fail(`${JSON.stringify(event)}: ${JSON.stringify(result.reasons)}`);
    }
  });

  it('keeps event times in [from, to), in order per customer, with unique v4 event ids', () => {
    assert.ok(events.length > population.length * 10);
    const last = new Map<string, number>();
    for (const event of events) {
      const t = Date.parse(event.ts);
      assert.ok(t >= from.getTime() && t < to.getTime(), event.ts);
      assert.ok(t >= (last.get(event.customer_id) ?? 0), `${event.customer_id} out of order`);
      last.set(event.customer_id, t);
      assert.match(event.event_id, UUID_V4);
    }
    assert.equal(new Set(events.map((e) => e.event_id)).size, events.length);
  });

  it('covers every event type and every customer', () => {
    assert.deepEqual(new Set(events.map((e) => e.type)).size, 8);
    assert.equal(new Set(events.map((e) => e.customer_id)).size, population.length);
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const sample = population.slice(0, 20);
    const run = (seed: number) => JSON.stringify([...generateEvents(sample, { from, to, seed })]);
    assert.equal(run(7), run(7));
    assert.notEqual(run(8), run(7));
  });

  it('scales volume with eventsPerCustomer', () => {
    const sample = population.slice(0, 300);
    const count = (eventsPerCustomer: number) =>
      [...generateEvents(sample, { from, to, seed: 1, eventsPerCustomer })].length / sample.length;
    const low = count(10);
    const high = count(40);
    assert.ok(low > 8 && low < 14, `mean ${low} for 10`);
    assert.ok(high > 36 && high < 46, `mean ${high} for 40`);
  });

  it('only buys after adding to cart, as a funnel does', () => {
    const carted = new Set<string>();
    for (const event of events) {
      if (event.type === 'add_to_cart') carted.add(event.customer_id);
      if (event.type === 'purchase') assert.ok(carted.has(event.customer_id), event.customer_id);
    }
  });

  it('refuses an empty window', () => {
    assert.throws(() => generateEvents(population, { from: to, to: from, seed: 1 }).next(), /expected from < to/);
  });
});

describe('personas are distinguishable', () => {
  const personaOf = new Map(population.map((c: Customer) => [c.customer_id, c.persona]));
  const stats = new Map<Persona, { customers: number; events: number; purchases: number[]; email: number; app: number; dwell: number[] }>(
    PERSONAS.map((p) => [
      p,
      { customers: population.filter((c) => c.persona === p).length, events: 0, purchases: [], email: 0, app: 0, dwell: [] },
    ]),
  );
  for (const event of events as Event[]) {
    const s = stats.get(personaOf.get(event.customer_id) ?? 'window_shopper');
    if (!s) continue;
    s.events += 1;
    if (event.type === 'purchase') s.purchases.push(event.properties.amount);
    if (event.type === 'email_open' || event.type === 'email_click') s.email += 1;
    if (event.type === 'app_session') s.app += 1;
    if (event.type === 'page_view') s.dwell.push(event.properties.duration_ms);
  }
  const of = (p: Persona) => {
    const s = stats.get(p);
    assert.ok(s);
    return s;
  };
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const others = (p: Persona) => PERSONAS.filter((q) => q !== p);

  it('loyal high spenders spend far more per order than bargain hunters', () => {
    const loyal = mean(of('loyal_high_spender').purchases);
    const bargain = mean(of('bargain_hunter').purchases);
    assert.ok(loyal > 3 * bargain, `loyal ${loyal} vs bargain ${bargain}`);
  });

  it('loyal high spenders buy most often; window shoppers almost never', () => {
    const rate = (p: Persona) => of(p).purchases.length / of(p).customers;
    for (const p of others('loyal_high_spender')) assert.ok(rate('loyal_high_spender') > rate(p), p);
    for (const p of others('window_shopper')) assert.ok(rate('window_shopper') * 5 < rate(p), p);
  });

  it('email-engaged customers have the largest share of email events', () => {
    const share = (p: Persona) => of(p).email / of(p).events;
    for (const p of others('email_engaged')) assert.ok(share('email_engaged') > 3 * share(p), p);
  });

  it('app-first customers have the largest share of app sessions', () => {
    const share = (p: Persona) => of(p).app / of(p).events;
    for (const p of others('app_first')) assert.ok(share('app_first') > 3 * share(p), p);
  });

  it('window shoppers dwell longest on pages', () => {
    for (const p of others('window_shopper')) assert.ok(median(of('window_shopper').dwell) > median(of(p).dwell), p);
  });
});

describe('makeMalformed', () => {
  it('is deterministic for a seed', () => {
    const opts: ValidateOptions = { maxBytes: 1024, maxFutureSkewMs: 60_000, now: to };
    const a = makeMalformed('invalid_value', 5, opts);
    const b = makeMalformed('invalid_value', 5, opts);
    assert.ok(a.data.equals(b.data));
    assert.deepEqual(a.attributes, b.attributes);
  });
});
