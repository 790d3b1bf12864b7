/**
 * Event contract v1: the zod schema is the single definition; the types, the
 * message validator and the published JSON Schema are all derived from it.
 */
import { z } from 'zod';
import { CustomerIdSchema } from './customer-id.js';
import { EXTENSIBLE_LENGTHS, NO_EXTENSIONS, type ContractExtensions, type ExtensibleLength } from './contract-extensions.js';

export const SCHEMA_VERSION = 'v1';

export const EVENT_TYPES = [
  'page_view',
  'click',
  'add_to_cart',
  'purchase',
  'email_open',
  'email_click',
  'app_session',
  'profile_update',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Event types that reclassify a customer in real time. */
export const TRIGGER_TYPES: ReadonlySet<EventType> = new Set<EventType>(['purchase', 'profile_update']);

/** Pub/Sub subscription filter selecting the trigger types (the emulator ignores filters, so consumers re-check). */
export const TRIGGER_SUBSCRIPTION_FILTER = [...TRIGGER_TYPES].map((t) => `attributes.type = "${t}"`).join(' OR ');

export function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && (EVENT_TYPES as readonly string[]).includes(value);
}

export function isTriggerType(value: unknown): value is EventType {
  return isEventType(value) && TRIGGER_TYPES.has(value);
}

export const INCOME_BANDS = ['low', 'lower_middle', 'middle', 'upper_middle', 'high'] as const;
export type IncomeBand = (typeof INCOME_BANDS)[number];

/** ISO 3166-1 alpha-2 officially assigned codes. */
export const COUNTRY_CODES = (
  'AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ ' +
  'CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR ' +
  'GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP ' +
  'KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT ' +
  'MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW ' +
  'SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG ' +
  'UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW'
).split(' ') as readonly string[];

// Every format check carries the "expected ..." phrase that ends up in a Reason.
const id = (what: string, max = 128) =>
  z
    .string()
    .min(1, { error: `a non-empty ${what}` })
    .max(max, { error: `a ${what} of at most ${max} characters` });
const httpUrl = z.url({ protocol: /^https?$/, error: 'an absolute http(s) URL' }).max(2048, { error: 'a URL of at most 2048 characters' });
const durationMs = z.number().int({ error: 'a whole number of milliseconds' }).min(0, { error: 'a duration >= 0 ms' });
const money = z.number().min(0, { error: 'an amount >= 0' });
const text = (max: number) => z.string().max(max, { error: `at most ${max} characters` });

/** An RFC 3339 timestamp in a document: event times, profile times, webhook times. */
export const Rfc3339Timestamp = z.iso.datetime({
  offset: true,
  error: 'an RFC 3339 timestamp with seconds and a Z or +hh:mm offset, e.g. 2026-11-26T09:15:00Z',
});

// Known fields are typed; unknown ones pass through (looseObject) so a producer
// adding a field does not send its events to quarantine. Optional fields accept
// null because many producers serialise "absent" as null.
export const PurchaseProperties = z.looseObject({
  order_id: id('order id'),
  amount: money,
  // A plain pattern rather than z.currencyCode(): its JSON Schema format "currency_code"
  // is unknown to producers' validators (ajv refuses unknown formats in strict mode).
  currency: z.string().regex(z.regexes.currencyCode, { error: 'an ISO 4217 currency code in upper case, e.g. USD' }),
});
export const PageViewProperties = z.looseObject({ url: httpUrl, duration_ms: durationMs });
export const ClickProperties = z.looseObject({ url: httpUrl, element: text(256).nullish() });
export const AddToCartProperties = z.looseObject({
  product_id: id('product id'),
  price: money.nullish(),
  quantity: z.number().int({ error: 'a whole number' }).min(1, { error: 'a quantity >= 1' }).nullish(),
});
export const EmailOpenProperties = z.looseObject({ campaign_id: id('campaign id') });
export const EmailClickProperties = z.looseObject({ campaign_id: id('campaign id'), url: httpUrl.nullish() });
export const AppSessionProperties = z.looseObject({ duration_ms: durationMs, platform: text(32).nullish() });
export const ProfileUpdateProperties = z.looseObject({
  age: z.number().int({ error: 'a whole number of years' }).min(0, { error: 'an age >= 0' }).max(130, { error: 'an age <= 130' }).nullish(),
  gender: text(32).nullish(),
  country: countryField([]),
  city: text(128).nullish(),
  income_band: incomeBandField([]),
});

function countryField(extra: readonly string[]) {
  const also = extra.length > 0 ? ` (or ${extra.join(', ')})` : '';
  return z
    .enum([...COUNTRY_CODES, ...extra] as [string, ...string[]], {
      error: `an ISO 3166-1 alpha-2 country code in upper case, e.g. US${also}`,
    })
    .nullish();
}

function incomeBandField(extra: readonly string[]) {
  const values = [...INCOME_BANDS, ...extra];
  return z.enum(values as [IncomeBand, ...IncomeBand[]], { error: `one of ${values.join(', ')}` }).nullish();
}

export const PROPERTIES_SCHEMAS = {
  page_view: PageViewProperties,
  click: ClickProperties,
  add_to_cart: AddToCartProperties,
  purchase: PurchaseProperties,
  email_open: EmailOpenProperties,
  email_click: EmailClickProperties,
  app_session: AppSessionProperties,
  profile_update: ProfileUpdateProperties,
} as const satisfies Record<EventType, z.ZodType>;

const envelope = {
  event_id: z.uuid({ error: 'a UUID, e.g. 0b6f3a52-8c1e-4d57-9a0e-2f4c6d8e1a3b' }),
  customer_id: CustomerIdSchema,
  ts: Rfc3339Timestamp,
};

function variant<T extends EventType, P extends z.ZodType>(type: T, properties: P) {
  return z.looseObject({ ...envelope, type: z.literal(type), properties });
}

export const PageViewEvent = variant('page_view', PageViewProperties);
export const ClickEvent = variant('click', ClickProperties);
export const AddToCartEvent = variant('add_to_cart', AddToCartProperties);
export const PurchaseEvent = variant('purchase', PurchaseProperties);
export const EmailOpenEvent = variant('email_open', EmailOpenProperties);
export const EmailClickEvent = variant('email_click', EmailClickProperties);
export const AppSessionEvent = variant('app_session', AppSessionProperties);
export const ProfileUpdateEvent = variant('profile_update', ProfileUpdateProperties);

export const EventSchema = z
  .discriminatedUnion('type', [
    PageViewEvent,
    ClickEvent,
    AddToCartEvent,
    PurchaseEvent,
    EmailOpenEvent,
    EmailClickEvent,
    AppSessionEvent,
    ProfileUpdateEvent,
  ])
  .meta({
    title: 'segflow event v1',
    description:
      'A customer event published as JSON in the data of a Pub/Sub message on topic customer-events. ' +
      'Set the message attributes type (equal to the body type), event_id and schema=v1. ' +
      'Unknown fields are accepted and kept.',
  });

/** The contract in force: the v1 schema widened by configured extensions (core/contract-extensions.ts). */
export interface EventContract {
  readonly extensions: ContractExtensions;
  readonly schema: typeof EventSchema;
}

export const DEFAULT_CONTRACT: EventContract = { extensions: NO_EXTENSIONS, schema: EventSchema };

// The field schema of each extensible text property at a given maximum length.
const LENGTH_FIELDS: Record<ExtensibleLength, (max: number) => z.ZodType> = {
  'purchase.order_id': (max) => id('order id', max),
  'add_to_cart.product_id': (max) => id('product id', max),
  'email_open.campaign_id': (max) => id('campaign id', max),
  'email_click.campaign_id': (max) => id('campaign id', max),
  'click.element': (max) => text(max).nullish(),
  'app_session.platform': (max) => text(max).nullish(),
  'profile_update.gender': (max) => text(max).nullish(),
  'profile_update.city': (max) => text(max).nullish(),
};

/** Builds the contract with the extensions applied; without any, the v1 schema itself. */
export function buildEventContract(extensions: ContractExtensions): EventContract {
  const overrides = new Map<EventType, Record<string, z.ZodType>>();
  const set = (key: string, field: z.ZodType) => {
    const [type, property] = key.split('.') as [EventType, string];
    overrides.set(type, { ...overrides.get(type), [property]: field });
  };
  const { enumValues, maxLength } = extensions;
  if (enumValues['profile_update.income_band'])
    set('profile_update.income_band', incomeBandField(enumValues['profile_update.income_band']));
  if (enumValues['profile_update.country']) set('profile_update.country', countryField(enumValues['profile_update.country']));
  for (const [key, max] of Object.entries(maxLength) as Array<[ExtensibleLength, number]>) {
    if (max !== EXTENSIBLE_LENGTHS[key]) set(key, LENGTH_FIELDS[key](max));
  }
  if (overrides.size === 0) return { extensions, schema: EventSchema };
  const variants = EVENT_TYPES.map((type) => {
    const extra = overrides.get(type);
    const properties = extra ? PROPERTIES_SCHEMAS[type].extend(extra) : PROPERTIES_SCHEMAS[type];
    return variant(type, properties);
  });
  // Same variants, same discriminator; only some fields accept more, so the output type is v1's.
  const schema = z
    .discriminatedUnion('type', variants as unknown as [typeof PageViewEvent, typeof ClickEvent])
    .meta(EventSchema.meta() ?? {}) as unknown as typeof EventSchema;
  return { extensions, schema };
}

// Used for the events whose type is not known, so their other fields are still checked.
const UnknownTypeEvent = z.looseObject({ ...envelope, type: z.string(), properties: z.looseObject({}) });

export type Event = z.infer<typeof EventSchema>;
export type EventInput = z.input<typeof EventSchema>;
export type PageViewEvent = z.infer<typeof PageViewEvent>;
export type ClickEvent = z.infer<typeof ClickEvent>;
export type AddToCartEvent = z.infer<typeof AddToCartEvent>;
export type PurchaseEvent = z.infer<typeof PurchaseEvent>;
export type EmailOpenEvent = z.infer<typeof EmailOpenEvent>;
export type EmailClickEvent = z.infer<typeof EmailClickEvent>;
export type AppSessionEvent = z.infer<typeof AppSessionEvent>;
export type ProfileUpdateEvent = z.infer<typeof ProfileUpdateEvent>;
export type EventOf<T extends EventType> = Extract<Event, { type: T }>;
export type PropertiesOf<T extends EventType> = EventOf<T>['properties'];

/** The JSON Schema published for producers, as written to schemas/event-v1.schema.json. */
export function renderEventJsonSchema(contract: EventContract = DEFAULT_CONTRACT): string {
  const schema = z.toJSONSchema(contract.schema, { io: 'input', target: 'draft-2020-12' });
  return `${JSON.stringify(schema, null, 2)}\n`;
}

// ---------------------------------------------------------------------------
// Validation of raw Pub/Sub messages

export const REASON_CODES = [
  'too_large',
  'not_utf8',
  'not_json',
  'not_object',
  'too_deep',
  'missing_field',
  'invalid_type',
  'invalid_value',
  'unknown_type',
  'bad_timestamp',
  'future_timestamp',
  'attribute_mismatch',
  'unsupported_schema',
] as const;
export type ReasonCode = (typeof REASON_CODES)[number];

export interface Reason {
  code: ReasonCode;
  /** Dotted location of the problem: `properties.amount`, `attributes.type`. */
  path?: string;
  message: string;
}

export interface RawMessage {
  data: Buffer;
  attributes: Record<string, string>;
  publishTime: Date;
  messageId: string;
}

export interface ValidateOptions {
  maxBytes: number;
  maxFutureSkewMs: number;
  now: Date;
  /** Deeper JSON is refused: JSON.stringify recurses and would overflow the stack downstream. */
  maxDepth?: number;
  /** The contract with configured extensions (buildEventContract); default: v1 as written. */
  contract?: EventContract;
}

export const DEFAULT_MAX_DEPTH = 32;

export type ValidationResult = { ok: true; event: Event } | { ok: false; reasons: Reason[] };

/** Checks one message completely and reports every problem found, never only the first. */
export function validateMessage(input: RawMessage, opts: ValidateOptions): ValidationResult {
  const reasons: Reason[] = [];
  const { data, attributes } = input;

  // Oversized bodies are still inspected: Pub/Sub caps a message at 10 MB, so the
  // cost is bounded, and the other reasons help whoever fixes the producer.
  if (data.length > opts.maxBytes) {
    reasons.push({
      code: 'too_large',
      message: `expected at most ${opts.maxBytes} bytes of data, found ${data.length} bytes`,
    });
  }

  if (attributes.schema !== undefined && attributes.schema !== SCHEMA_VERSION) {
    reasons.push({
      code: 'unsupported_schema',
      path: 'attributes.schema',
      message: `expected schema attribute "${SCHEMA_VERSION}" (or none), found ${show(attributes.schema)}`,
    });
  }

  const body = parseBody(data, reasons, opts.maxDepth ?? DEFAULT_MAX_DEPTH);
  if (body === undefined) return { ok: false, reasons };

  const bodyType = body.type;
  const known = isEventType(bodyType);
  const reportedType = !known && bodyType !== undefined;
  if (reportedType) {
    reasons.push({
      code: 'unknown_type',
      path: 'type',
      message: `expected one of ${EVENT_TYPES.join(', ')}, found ${show(bodyType)}`,
    });
  }
  // With a known type the union dispatches to that variant alone, so its issues
  // are about this event's own fields; otherwise the envelope is still checked.
  let event: Event | undefined;
  if (known) {
    const checked = (opts.contract ?? DEFAULT_CONTRACT).schema.safeParse(body, { reportInput: true });
    if (checked.success) event = checked.data;
    else reasons.push(...checked.error.issues.map(toReason));
  } else {
    const checked = UnknownTypeEvent.safeParse(body, { reportInput: true });
    for (const issue of checked.error?.issues ?? []) {
      // The fallback schema's complaint about type would repeat unknown_type.
      if (reportedType && issue.path[0] === 'type') continue;
      reasons.push(toReason(issue));
    }
  }

  if (typeof body.ts === 'string' && Rfc3339Timestamp.safeParse(body.ts).success) {
    const eventTime = Date.parse(body.ts);
    const limit = opts.now.getTime() + opts.maxFutureSkewMs;
    if (eventTime > limit) {
      reasons.push({
        code: 'future_timestamp',
        path: 'ts',
        message:
          `expected an event time no later than ${new Date(limit).toISOString()} ` +
          `(now + ${opts.maxFutureSkewMs} ms of clock skew), found ${show(body.ts)}`,
      });
    }
  }

  for (const key of ['type', 'event_id'] as const) {
    const attr = attributes[key];
    const value = body[key];
    if (attr !== undefined && typeof value === 'string' && attr !== value) {
      reasons.push({
        code: 'attribute_mismatch',
        path: `attributes.${key}`,
        message: `expected the ${key} attribute to equal the body's ${key} ${show(value)}, found ${show(attr)}`,
      });
    }
  }

  if (reasons.length > 0 || event === undefined) return { ok: false, reasons };
  return { ok: true, event };
}

function parseBody(data: Buffer, reasons: Reason[], maxDepth: number): Record<string, unknown> | undefined {
  let textBody: string;
  try {
    // Built per call, not at import: workflow code imports this module for its types and constants.
    textBody = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    const at = firstInvalidUtf8(data);
    reasons.push({
      code: 'not_utf8',
      message: `expected UTF-8 encoded JSON, found an invalid byte sequence at byte ${at}`,
    });
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(textBody);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    reasons.push({ code: 'not_json', message: `expected a JSON document, found text that does not parse (${detail})` });
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    reasons.push({ code: 'not_object', message: `expected a JSON object, found ${describe(parsed)}` });
    return undefined;
  }
  const depth = depthOf(parsed, maxDepth);
  if (depth.exceeded) {
    reasons.push({
      code: 'too_deep',
      path: depth.path,
      message: `expected JSON nested at most ${maxDepth} levels deep, found deeper nesting`,
    });
  }
  return parsed as Record<string, unknown>;
}

// Iterative on purpose: the input is exactly the kind that overflows a recursive walk.
function depthOf(root: object, maxDepth: number): { exceeded: false } | { exceeded: true; path: string } {
  const stack: Array<{ value: unknown; depth: number; path: string }> = [{ value: root, depth: 1, path: '' }];
  while (stack.length > 0) {
    const item = stack.pop();
    if (item === undefined) break;
    const { value, depth, path } = item;
    if (value === null || typeof value !== 'object') continue;
    if (depth > maxDepth) return { exceeded: true, path: path || '(root)' };
    for (const [key, child] of Object.entries(value)) {
      if (child !== null && typeof child === 'object') {
        stack.push({ value: child, depth: depth + 1, path: path ? `${path}.${key}` : key });
      }
    }
  }
  return { exceeded: false };
}

/** Offset of the first byte that breaks UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i] ?? 0;
    if (lead < 0x80) {
      i += 1;
      continue;
    }
    // [continuation bytes, allowed range of the second byte]
    let shape: [number, number, number];
    if (lead >= 0xc2 && lead <= 0xdf) shape = [1, 0x80, 0xbf];
    else if (lead === 0xe0) shape = [2, 0xa0, 0xbf];
    else if (lead === 0xed) shape = [2, 0x80, 0x9f];
    else if (lead >= 0xe1 && lead <= 0xef) shape = [2, 0x80, 0xbf];
    else if (lead === 0xf0) shape = [3, 0x90, 0xbf];
    else if (lead >= 0xf1 && lead <= 0xf3) shape = [3, 0x80, 0xbf];
    else if (lead === 0xf4) shape = [3, 0x80, 0x8f];
    else return i;
    const [count, low, high] = shape;
    for (let k = 1; k <= count; k += 1) {
      const byte = bytes[i + k];
      if (byte === undefined) return i;
      const [min, max] = k === 1 ? [low, high] : [0x80, 0xbf];
      if (byte < min || byte > max) return i;
    }
    i += count + 1;
  }
  return bytes.length;
}

function toReason(issue: z.core.$ZodIssue): Reason {
  const path = issue.path.map(String).join('.');
  const where = path === '' ? {} : { path };
  const input = issue.input;
  if (issue.code === 'invalid_type') {
    const expected = EXPECTED_TYPE[issue.expected] ?? issue.expected;
    if (input === undefined) {
      return { code: 'missing_field', ...where, message: `expected ${expected}, found nothing: the field is missing` };
    }
    return { code: 'invalid_type', ...where, message: `expected ${expected}, found ${describe(input)}` };
  }
  // Every other check in the schema carries its own "expected ..." phrase as its message.
  const code = issue.code === 'invalid_format' && path === 'ts' ? 'bad_timestamp' : 'invalid_value';
  return { code, ...where, message: `expected ${issue.message}, found ${describe(input)}` };
}

const EXPECTED_TYPE: Partial<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'a boolean',
  object: 'a JSON object',
  array: 'an array',
};

const SHOW_LIMIT = 80;

/** A short, log-safe rendering of a hostile value: escaped, truncated, never a full dump. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return `an array of ${value.length} items`;
  if (value !== null && typeof value === 'object') return 'an object';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  // JSON.stringify escapes control characters; the rest of what can reorder or
  // hide text in a terminal (C1 controls, line separators, bidi overrides) is escaped here.
  const json = JSON.stringify(value).replace(
    /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  if (json.length <= SHOW_LIMIT) return json;
  const length = typeof value === 'string' ? ` (${value.length} characters)` : '';
  return `${json.slice(0, SHOW_LIMIT)}…${length}`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined || Array.isArray(value) || typeof value === 'object') return show(value);
  return `${typeof value === 'string' ? 'a string' : `a ${typeof value}`} ${show(value)}`;
}

// ---------------------------------------------------------------------------
// Producing

export interface EncodedEvent {
  data: Buffer;
  attributes: { type: EventType; event_id: string; schema: typeof SCHEMA_VERSION };
}

/** Encodes an event for publishing; refuses an invalid one so the mistake surfaces at the producer. */
export function encodeEvent(event: EventInput): EncodedEvent {
  const checked = EventSchema.safeParse(event, { reportInput: true });
  if (!checked.success) {
    const reasons = checked.error.issues.map(toReason);
    throw new Error(
      `encodeEvent: the event does not satisfy the v1 contract: ${reasons.map((r) => `${r.path ?? '(event)'}: ${r.message}`).join('; ')}`,
    );
  }
  const parsed = checked.data;
  return {
    data: Buffer.from(JSON.stringify(parsed), 'utf8'),
    attributes: { type: parsed.type, event_id: parsed.event_id, schema: SCHEMA_VERSION },
  };
}
