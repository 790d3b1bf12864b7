/**
 * Additions to the event contract made by configuration (SEGFLOW_EVENT_CONTRACT_EXTENSIONS), not by
 * a code change: extra accepted values of an enumerated property, a longer maximum length of a text
 * property. The validator (core/events.ts), the published JSON Schema and the documentation all read
 * them from this one parsed value. Only widening is possible: a value valid before stays valid.
 */
import { z } from 'zod';

/** Enumerated properties that may accept more values, as `<event type>.<property>`. */
export const EXTENSIBLE_ENUMS = ['profile_update.income_band', 'profile_update.country'] as const;
export type ExtensibleEnum = (typeof EXTENSIBLE_ENUMS)[number];

/** Text properties whose maximum length may grow, with the contract's own maximum. */
export const EXTENSIBLE_LENGTHS = {
  'purchase.order_id': 128,
  'add_to_cart.product_id': 128,
  'email_open.campaign_id': 128,
  'email_click.campaign_id': 128,
  'click.element': 256,
  'app_session.platform': 32,
  'profile_update.gender': 32,
  'profile_update.city': 128,
} as const;
export type ExtensibleLength = keyof typeof EXTENSIBLE_LENGTHS;

export interface ContractExtensions {
  /** Values accepted beyond the contract's own list. */
  readonly enumValues: Partial<Record<ExtensibleEnum, readonly string[]>>;
  /** Maximum lengths above the contract's own. */
  readonly maxLength: Partial<Record<ExtensibleLength, number>>;
}

export const NO_EXTENSIONS: ContractExtensions = { enumValues: {}, maxLength: {} };

const lengthKeys = Object.keys(EXTENSIBLE_LENGTHS) as [ExtensibleLength, ...ExtensibleLength[]];

export const ContractExtensionsSchema = z.strictObject({
  enumValues: z
    .partialRecord(
      z.enum(EXTENSIBLE_ENUMS, { error: `an extensible enumerated property: ${EXTENSIBLE_ENUMS.join(', ')}` }),
      z.array(z.string().min(1).max(128)).min(1).max(1000),
    )
    .default({}),
  maxLength: z
    .partialRecord(
      z.enum(lengthKeys, { error: `an extensible text property: ${lengthKeys.join(', ')}` }),
      z.number().int().min(1).max(1_000_000),
    )
    .default({}),
});

/** Parses the setting's JSON; returns the problems instead of throwing, for the configuration's one message. */
export function parseContractExtensions(
  json: string | undefined,
): { ok: true; value: ContractExtensions } | { ok: false; problems: string[] } {
  if (json === undefined || json.trim() === '') return { ok: true, value: NO_EXTENSIONS };
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return { ok: false, problems: ['expected a JSON object like {"enumValues": {"profile_update.income_band": ["mid"]}}'] };
  }
  const parsed = ContractExtensionsSchema.safeParse(raw);
  if (!parsed.success) {
    return { ok: false, problems: parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`) };
  }
  const problems: string[] = [];
  for (const [key, max] of Object.entries(parsed.data.maxLength) as Array<[ExtensibleLength, number]>) {
    if (max < EXTENSIBLE_LENGTHS[key]) {
      problems.push(`maxLength.${key}: expected at least the contract's own ${EXTENSIBLE_LENGTHS[key]} (only widening), found ${max}`);
    }
  }
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, value: parsed.data };
}

/** One line per addition, for the startup log and the documentation. */
export function describeContractExtensions(ext: ContractExtensions): string[] {
  const lines: string[] = [];
  for (const [key, values] of Object.entries(ext.enumValues)) lines.push(`${key} also accepts ${values.join(', ')}`);
  for (const [key, max] of Object.entries(ext.maxLength)) {
    lines.push(`${key} up to ${max} characters (contract: ${EXTENSIBLE_LENGTHS[key as ExtensibleLength]})`);
  }
  return lines;
}
