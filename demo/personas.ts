/**
 * Demo traffic from latent personas, so segmentation has real structure to
 * find, plus malformed and hostile messages for tests and chaos runs.
 * Everything is a function of its seed: same seed, same customers, same events.
 */
import {
  DEFAULT_MAX_DEPTH,
  encodeEvent,
  type Event,
  type EventOf,
  type EventType,
  type IncomeBand,
  type PropertiesOf,
  type RawMessage,
  type ReasonCode,
  type ValidateOptions,
} from '../core/events.js';
import { createRng, deriveSeed, type Rng } from '../core/random.js';

// ---------------------------------------------------------------------------
// Personas

export const PERSONAS = ['loyal_high_spender', 'bargain_hunter', 'window_shopper', 'email_engaged', 'app_first'] as const;
export type Persona = (typeof PERSONAS)[number];

type Channel = 'web' | 'app' | 'email';

export interface PersonaBehaviour {
  /** Share of the population. */
  share: number;
  /** Relative event volume. */
  activity: number;
  /** Mix of session kinds. */
  channels: Record<Channel, number>;
  pagesPerSession: number;
  pageSecondsMedian: number;
  clickRate: number;
  /** P(add_to_cart) per web or app session. */
  cartRate: number;
  /** P(purchase | add_to_cart). */
  buyRate: number;
  basketMedianUsd: number;
  basketSigma: number;
  /** P(browsing the sale section rather than full-price products). */
  saleAffinity: number;
  /** P(email_click | email_open). */
  emailClickRate: number;
  appMinutesMedian: number;
  age: { mean: number; sd: number };
  income: Record<IncomeBand, number>;
}

export const PERSONA_BEHAVIOUR: Readonly<Record<Persona, Readonly<PersonaBehaviour>>> = {
  loyal_high_spender: {
    share: 0.15,
    activity: 1.2,
    channels: { web: 0.5, app: 0.3, email: 0.2 },
    pagesPerSession: 4,
    pageSecondsMedian: 45,
    clickRate: 0.4,
    cartRate: 0.55,
    buyRate: 0.8,
    basketMedianUsd: 160,
    basketSigma: 0.45,
    saleAffinity: 0.1,
    emailClickRate: 0.35,
    appMinutesMedian: 8,
    age: { mean: 44, sd: 9 },
    income: { low: 0.02, lower_middle: 0.08, middle: 0.25, upper_middle: 0.35, high: 0.3 },
  },
  bargain_hunter: {
    share: 0.25,
    activity: 1.1,
    channels: { web: 0.6, app: 0.15, email: 0.25 },
    pagesPerSession: 6,
    pageSecondsMedian: 20,
    clickRate: 0.6,
    cartRate: 0.5,
    buyRate: 0.5,
    basketMedianUsd: 24,
    basketSigma: 0.5,
    saleAffinity: 0.85,
    emailClickRate: 0.3,
    appMinutesMedian: 4,
    age: { mean: 31, sd: 8 },
    income: { low: 0.3, lower_middle: 0.35, middle: 0.25, upper_middle: 0.08, high: 0.02 },
  },
  window_shopper: {
    share: 0.3,
    activity: 1.0,
    channels: { web: 0.8, app: 0.15, email: 0.05 },
    pagesPerSession: 7,
    pageSecondsMedian: 70,
    clickRate: 0.3,
    cartRate: 0.12,
    buyRate: 0.08,
    basketMedianUsd: 45,
    basketSigma: 0.5,
    saleAffinity: 0.3,
    emailClickRate: 0.05,
    appMinutesMedian: 5,
    age: { mean: 27, sd: 7 },
    income: { low: 0.25, lower_middle: 0.3, middle: 0.3, upper_middle: 0.1, high: 0.05 },
  },
  email_engaged: {
    share: 0.15,
    activity: 0.7,
    channels: { web: 0.2, app: 0.05, email: 0.75 },
    pagesPerSession: 2,
    pageSecondsMedian: 40,
    clickRate: 0.3,
    cartRate: 0.35,
    buyRate: 0.6,
    basketMedianUsd: 70,
    basketSigma: 0.45,
    saleAffinity: 0.3,
    emailClickRate: 0.55,
    appMinutesMedian: 3,
    age: { mean: 52, sd: 10 },
    income: { low: 0.1, lower_middle: 0.2, middle: 0.35, upper_middle: 0.25, high: 0.1 },
  },
  app_first: {
    share: 0.15,
    activity: 1.3,
    channels: { web: 0.1, app: 0.85, email: 0.05 },
    pagesPerSession: 3,
    pageSecondsMedian: 25,
    clickRate: 0.4,
    cartRate: 0.25,
    buyRate: 0.45,
    basketMedianUsd: 45,
    basketSigma: 0.5,
    saleAffinity: 0.3,
    emailClickRate: 0.1,
    appMinutesMedian: 12,
    age: { mean: 25, sd: 5 },
    income: { low: 0.15, lower_middle: 0.3, middle: 0.35, upper_middle: 0.15, high: 0.05 },
  },
};

const CITIES = {
  US: ['New York', 'Los Angeles', 'Chicago', 'Houston', 'Seattle'],
  GB: ['London', 'Manchester', 'Leeds'],
  DE: ['Berlin', 'München', 'Hamburg'],
  FR: ['Paris', 'Lyon', 'Marseille'],
  CA: ['Toronto', 'Vancouver', 'Montréal'],
  AU: ['Sydney', 'Melbourne'],
  NL: ['Amsterdam', 'Rotterdam'],
  ES: ['Madrid', 'Barcelona'],
} as const satisfies Record<string, readonly string[]>;
type DemoCountry = keyof typeof CITIES;
const COUNTRY_WEIGHTS: Record<DemoCountry, number> = { US: 0.4, GB: 0.15, DE: 0.12, FR: 0.1, CA: 0.08, AU: 0.07, NL: 0.04, ES: 0.04 };
const GENDER_WEIGHTS = { female: 0.49, male: 0.48, non_binary: 0.03 };
const CAMPAIGNS = ['welcome-series', 'weekly-digest', 'flash-sale', 'new-arrivals', 'loyalty-rewards', 'cart-reminder'];
const ELEMENTS = ['a.product-card', 'button#add-to-cart', 'nav.menu', 'a.banner', 'button.filter', 'a.review'];
const SHOP = 'https://shop.example.com';

export interface Demographics {
  age: number;
  gender: string;
  country: string;
  city: string;
  income_band: IncomeBand;
}

export interface Customer {
  customer_id: string;
  persona: Persona;
  demographics: Demographics;
  platform: 'ios' | 'android';
  /** Set on the demographic twin of its persona (makePopulation's `demographicTwin` option). */
  twin?: true;
}

/**
 * A sixth group that behaves exactly like `behavesAs` and differs only in age band and country:
 * demographics are the only thing that can tell it apart, which is what tests of demographic
 * features need (`makePopulation(n, seed, { demographicTwin: true })`).
 */
export const DEMOGRAPHIC_TWIN = {
  name: 'young_window_shopper_spain',
  behavesAs: 'window_shopper' as Persona,
  /** Share of the `behavesAs` customers that are twins instead. */
  share: 0.5,
  age: { mean: 22, sd: 2 },
  countries: { ES: 1 } as Readonly<Partial<Record<DemoCountry, number>>>,
} as const;

/**
 * The demographics of one customer of `persona` (or of its demographic twin), drawn from `rng`;
 * a non-twin draws in the order makePopulation always has, so populations stay as they were.
 */
export function drawDemographics(rng: Rng, persona: Persona, twin = false): Demographics {
  const behaviour = PERSONA_BEHAVIOUR[persona];
  const country = rng.weighted((twin ? DEMOGRAPHIC_TWIN.countries : COUNTRY_WEIGHTS) as Record<DemoCountry, number>);
  const age = twin ? DEMOGRAPHIC_TWIN.age : behaviour.age;
  return {
    age: Math.min(90, Math.max(18, Math.round(rng.normal(age.mean, age.sd)))),
    gender: rng.weighted(GENDER_WEIGHTS),
    country,
    city: rng.pick(CITIES[country]),
    income_band: rng.weighted(behaviour.income),
  };
}

/**
 * Customer i depends only on (seed, i), so a larger population extends a
 * smaller one with the same seed instead of reshuffling it.
 */
export function makePopulation(n: number, seed: number, opts: { idPrefix?: string; demographicTwin?: boolean } = {}): Customer[] {
  if (!Number.isInteger(n) || n < 0) throw new Error(`makePopulation: expected a whole number of customers >= 0, found ${n}`);
  const prefix = opts.idPrefix ?? 'cust';
  const shares = Object.fromEntries(PERSONAS.map((p) => [p, PERSONA_BEHAVIOUR[p].share])) as Record<Persona, number>;
  return Array.from({ length: n }, (_, i) => {
    const rng = createRng(deriveSeed(seed, 'customer', i));
    const persona = rng.weighted(shares);
    // Drawn from its own stream, so asking for twins leaves every other customer as it was.
    const twin =
      opts.demographicTwin === true &&
      persona === DEMOGRAPHIC_TWIN.behavesAs &&
      createRng(deriveSeed(seed, 'twin', i)).chance(DEMOGRAPHIC_TWIN.share);
    const demographics = drawDemographics(rng, persona, twin);
    return {
      customer_id: `${prefix}-${String(i).padStart(6, '0')}`,
      persona,
      demographics,
      platform: rng.chance(0.55) ? 'ios' : 'android',
      ...(twin ? { twin: true as const } : {}),
    };
  });
}

export interface GenerateOptions {
  from: Date;
  to: Date;
  seed: number;
  /** Approximate mean over the population; personas scale it by their activity. */
  eventsPerCustomer?: number;
}

/**
 * Valid v1 events with event times in [from, to): per customer, a profile
 * update and sessions (web, app, email) following the persona's funnel.
 * Yields customer by customer, each customer's events in time order.
 */
export function* generateEvents(population: readonly Customer[], opts: GenerateOptions): Generator<Event> {
  const from = opts.from.getTime();
  const to = opts.to.getTime();
  if (!(from < to)) {
    throw new Error(`generateEvents: expected from < to, found ${opts.from.toISOString()} .. ${opts.to.toISOString()}`);
  }
  const perCustomer = opts.eventsPerCustomer ?? 30;
  const meanActivity = PERSONAS.reduce((sum, p) => sum + PERSONA_BEHAVIOUR[p].share * PERSONA_BEHAVIOUR[p].activity, 0);
  for (const customer of population) {
    const rng = createRng(deriveSeed(opts.seed, 'events', customer.customer_id));
    const behaviour = PERSONA_BEHAVIOUR[customer.persona];
    const target = rng.poisson((perCustomer * behaviour.activity) / meanActivity);
    const events: Event[] = [];
    if (target > 0) events.push(profileUpdate(rng, customer, rng.int(from, to - 1)));
    while (events.length < target) {
      const start = rng.int(from, to - 1);
      const session = new Session(rng, customer, start, to);
      const channel = rng.weighted(behaviour.channels);
      if (channel === 'web') session.web(behaviour.pagesPerSession);
      else if (channel === 'app') session.app();
      else session.email();
      events.push(...session.events);
    }
    events.sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts));
    yield* events;
  }
}

function profileUpdate(rng: Rng, customer: Customer, at: number): Event {
  // Real profiles have gaps; features must cope with a missing field.
  const keep = () => rng.chance(0.95);
  const { age, gender, country, city, income_band } = customer.demographics;
  const properties: PropertiesOf<'profile_update'> = {};
  if (keep()) properties.age = age;
  if (keep()) properties.gender = gender;
  if (keep()) properties.country = country;
  if (keep()) properties.city = city;
  if (keep()) properties.income_band = income_band;
  return {
    event_id: rng.uuid(),
    customer_id: customer.customer_id,
    type: 'profile_update',
    ts: new Date(at).toISOString(),
    properties,
  };
}

interface Product {
  id: string;
  sale: boolean;
}

/** One visit: events advance in time and stop at the end of the window. */
class Session {
  readonly events: Event[] = [];
  private readonly behaviour: Readonly<PersonaBehaviour>;

  constructor(
    private readonly rng: Rng,
    private readonly customer: Customer,
    private clock: number,
    private readonly end: number,
  ) {
    this.behaviour = PERSONA_BEHAVIOUR[customer.persona];
  }

  web(meanPages: number): void {
    const pages = 1 + this.rng.poisson(Math.max(0, meanPages - 1));
    let product = this.product();
    for (let i = 0; i < pages; i += 1) {
      if (i > 0) product = this.product();
      const url = this.productUrl(product);
      const duration = Math.round(this.rng.logNormal(this.behaviour.pageSecondsMedian * 1000, 0.6));
      this.emit('page_view', { url, duration_ms: duration });
      if (this.rng.chance(this.behaviour.clickRate)) {
        this.advance(this.rng.int(1_000, Math.max(1_000, duration)));
        this.emit('click', { url, element: this.rng.pick(ELEMENTS) });
      }
      this.advance(duration + this.rng.int(500, 5_000));
    }
    this.funnel(product);
  }

  app(): void {
    const duration = Math.round(this.rng.logNormal(this.behaviour.appMinutesMedian * 60_000, 0.5));
    this.emit('app_session', { duration_ms: duration, platform: this.customer.platform });
    this.advance(this.rng.int(10_000, Math.max(10_000, duration)));
    this.funnel(this.product());
  }

  email(): void {
    const campaign = this.behaviour.saleAffinity > 0.5 && this.rng.chance(0.6) ? 'flash-sale' : this.rng.pick(CAMPAIGNS);
    this.emit('email_open', { campaign_id: campaign });
    if (!this.rng.chance(this.behaviour.emailClickRate)) return;
    this.advance(this.rng.int(5_000, 120_000));
    const product = this.product();
    this.emit('email_click', { campaign_id: campaign, url: `${this.productUrl(product)}?utm_campaign=${campaign}` });
    this.advance(this.rng.int(1_000, 10_000));
    this.web(Math.max(1, this.behaviour.pagesPerSession / 2));
  }

  private funnel(product: Product): void {
    if (!this.rng.chance(this.behaviour.cartRate)) return;
    const quantity = this.rng.chance(0.8) ? 1 : this.rng.int(2, 4);
    const amount = this.amount(product.sale);
    this.emit('add_to_cart', { product_id: product.id, price: cents(amount / quantity), quantity });
    if (!this.rng.chance(this.behaviour.buyRate)) return;
    this.advance(this.rng.int(30_000, 600_000));
    this.emit('purchase', { order_id: `ord-${this.rng.hex(16)}`, amount, currency: 'USD' });
  }

  private amount(sale: boolean): number {
    const { basketMedianUsd, basketSigma } = this.behaviour;
    // One currency keeps amount features free of an exchange-rate table.
    return cents(Math.max(1, this.rng.logNormal(basketMedianUsd * (sale ? 0.7 : 1), basketSigma)));
  }

  private product(): Product {
    return { id: `sku-${String(this.rng.int(1, 5000)).padStart(5, '0')}`, sale: this.rng.chance(this.behaviour.saleAffinity) };
  }

  private productUrl(product: Product): string {
    return `${SHOP}/${product.sale ? 'sale' : 'products'}/${product.id}`;
  }

  private advance(ms: number): void {
    this.clock += ms;
  }

  private emit<T extends EventType>(type: T, properties: PropertiesOf<T>): void {
    if (this.clock >= this.end) return;
    // TypeScript cannot correlate the generic T across type and properties; the parameters already pin them.
    const event = {
      event_id: this.rng.uuid(),
      customer_id: this.customer.customer_id,
      type,
      ts: new Date(this.clock).toISOString(),
      properties,
    } as EventOf<T>;
    this.events.push(event);
    this.advance(1);
  }
}

function cents(value: number): number {
  return Math.round(value * 100) / 100;
}

// ---------------------------------------------------------------------------
// Malformed and hostile input

/** Each kind is named after the reason code its message must produce. */
export type MalformedKind = ReasonCode;

/** Strings that have broken pipelines before: injection, templating, terminals, NDJSON framing, Unicode edge cases. */
export const HOSTILE_STRINGS: readonly string[] = [
  "'; DROP TABLE raw.events; --",
  '" OR 1=1 --',
  "{{ ref('customer_features') }}",
  '{% for x in range(999999999) %}{% endfor %}',
  '${process.exit(1)}',
  '<script>alert(1)</script>',
  '\u0000\u0001\u0007\u001b[31mred\u001b[0m',
  'line1\nline2\r\n{"event_id":"forged"}',
  '\u202eevil\u202c',
  '\ud800 lone surrogate',
  '💥 ünïcödé 中文',
  '../../etc/passwd',
  '__proto__',
  'a'.repeat(100_000),
];

/** A raw message that fails validation under `opts` with exactly the reason named by `kind`; the seed picks a variant. */
export function makeMalformed(kind: MalformedKind, seed: number, opts: ValidateOptions): RawMessage {
  const rng = createRng(deriveSeed(seed, 'malformed', kind));
  const base = baseEvent(rng, opts.now);
  const encoded = encodeEvent(base);
  const attributes: Record<string, string> = { ...encoded.attributes };
  const message = (data: Buffer | string | object): RawMessage => ({
    data: Buffer.isBuffer(data) ? data : Buffer.from(typeof data === 'string' ? data : JSON.stringify(data), 'utf8'),
    attributes,
    publishTime: opts.now,
    messageId: `malformed-${kind}-${seed}`,
  });
  const props: Record<string, unknown> = { ...base.properties };
  const body: Record<string, unknown> = { ...base, properties: props };

  switch (kind) {
    case 'too_large':
      props.padding = 'x'.repeat(opts.maxBytes);
      return message(body);
    case 'not_utf8': {
      const json = Buffer.from(JSON.stringify({ ...body, properties: { ...props, note: '@@' } }), 'utf8');
      const bad = rng.pick([[0xfc], [0xff], [0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82]]);
      const at = json.indexOf('@@');
      return message(Buffer.concat([json.subarray(0, at), Buffer.from(bad), json.subarray(at + 2)]));
    }
    case 'not_json': {
      const json = JSON.stringify(body);
      return message(
        rng.pick([
          json.slice(0, Math.floor(json.length / 2)),
          json.replaceAll('"', "'"),
          `${json.slice(0, -1)},}`,
          json.replace(/"amount":[^,}]+/, '"amount":NaN'),
          '',
          `${json}\n${json}`,
        ]),
      );
    }
    case 'not_object':
      return message(rng.pick(['[1,2,3]', '"purchase"', '42', 'null', 'true', `[${JSON.stringify(body)}]`]));
    case 'too_deep': {
      const depth = Math.max(10_000, (opts.maxDepth ?? DEFAULT_MAX_DEPTH) + 1);
      const json = JSON.stringify({ ...body, properties: { ...props, nested: '@@' } });
      return message(json.replace('"@@"', `${'['.repeat(depth)}${']'.repeat(depth)}`));
    }
    case 'missing_field': {
      const field = rng.pick(['event_id', 'customer_id', 'ts', 'properties', 'properties.amount']);
      if (field === 'properties.amount') delete props.amount;
      else delete body[field];
      return message(body);
    }
    case 'invalid_type': {
      const variant = rng.int(0, 3);
      if (variant === 0) props.amount = String(props.amount);
      else if (variant === 1) body.customer_id = 12345;
      else if (variant === 2) body.properties = [props];
      else body.event_id = { id: body.event_id };
      return message(body);
    }
    case 'invalid_value': {
      const variant = rng.int(0, 3);
      if (variant === 0) body.customer_id = rng.pick(HOSTILE_STRINGS);
      else if (variant === 1) props.amount = -rng.int(1, 100);
      else if (variant === 2) props.currency = rng.pick(['usd', 'US', 'DOLLARS', 'ABC']);
      else {
        const eventId = rng.pick(['not-a-uuid', '12345', '0b6f3a52-8c1e-4d57-9a0e-2f4c6d8e1a3']);
        body.event_id = eventId;
        attributes.event_id = eventId;
      }
      return message(body);
    }
    case 'unknown_type': {
      const type = rng.pick(['refund', 'PURCHASE', '', 'purchase ', 'page-view']);
      body.type = type;
      attributes.type = type;
      return message(body);
    }
    case 'bad_timestamp':
      body.ts = rng.pick([
        '2026-11-26 09:15:00',
        '2026-11-26T09:15:00',
        '2026-02-30T00:00:00Z',
        '1764148500',
        '26/11/2026 09:15',
        '2026-11-26T24:00:00Z',
        '2026-11-26T09:15Z',
      ]);
      return message(body);
    case 'future_timestamp':
      body.ts = new Date(opts.now.getTime() + opts.maxFutureSkewMs + rng.int(60_000, 86_400_000)).toISOString();
      return message(body);
    case 'attribute_mismatch':
      if (rng.chance(0.5)) attributes.type = 'page_view';
      else attributes.event_id = rng.uuid();
      return message(body);
    case 'unsupported_schema':
      attributes.schema = rng.pick(['v2', '1', 'V1', '']);
      return message(body);
  }
}

/** A valid event carrying hostile strings wherever the contract allows free text: it must pass and survive the lake unchanged. */
export function makeHostileEvent(seed: number, now: Date): Event {
  const rng = createRng(deriveSeed(seed, 'hostile'));
  const nested: Record<string, unknown> = {};
  let cursor = nested;
  for (let i = 0; i < 10; i += 1) {
    const child: Record<string, unknown> = { level: i };
    cursor.child = child;
    cursor = child;
  }
  return {
    event_id: rng.uuid(),
    customer_id: 'o.brien@example.com',
    type: 'click',
    ts: new Date(now.getTime() - 60_000).toISOString(),
    properties: {
      url: `${SHOP}/search?q=%27%3B%20DROP%20TABLE`,
      element: rng.pick(HOSTILE_STRINGS.filter((s) => s.length <= 256)),
      hostile: [...HOSTILE_STRINGS],
      nested,
    },
  };
}

function baseEvent(rng: Rng, now: Date): EventOf<'purchase'> {
  return {
    event_id: rng.uuid(),
    customer_id: `cust-${String(rng.int(0, 999_999)).padStart(6, '0')}`,
    type: 'purchase',
    ts: new Date(now.getTime() - rng.int(1_000, 3_600_000)).toISOString(),
    properties: { order_id: `ord-${rng.hex(16)}`, amount: cents(rng.logNormal(50, 0.5)), currency: 'USD' },
  };
}
