/**
 * Time as segflow writes it: durations such as '30s' or '2h', and instants in
 * RFC 3339 with an offset. No dependencies and deterministic, so workflow code
 * imports it too; the zod schema for timestamps in documents is
 * Rfc3339Timestamp in core/events.ts.
 */

/** Milliseconds per duration unit. */
export const MS_PER_UNIT = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export type DurationUnit = keyof typeof MS_PER_UNIT;
/** A duration written with its unit, e.g. `'1.5s'`, `'20m'`, `'1d'`. */
export type Duration = `${number}${DurationUnit}`;

export const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** Milliseconds for a duration such as '1.5s'; NaN when the text is malformed, so the caller words the error. */
export function parseDuration(text: string): number {
  const match = DURATION_PATTERN.exec(text);
  if (match === null) return Number.NaN;
  return Number(match[1]) * MS_PER_UNIT[match[2] as DurationUnit];
}

// Offsets are required so an instant never depends on the machine's time zone.
const OFFSET = /(Z|[+-]\d{2}:?\d{2})$/i;

/** Epoch milliseconds of an RFC 3339 instant with an offset; NaN for anything else, so the caller words the error. */
export function parseInstant(text: string): number {
  return typeof text === 'string' && OFFSET.test(text) ? Date.parse(text) : Number.NaN;
}

/** `2026-11-26T09:00:00Z`: UTC, second precision unless the instant has milliseconds. */
export function formatInstant(instant: Date | number): string {
  const iso = new Date(instant).toISOString();
  return iso.endsWith('.000Z') ? `${iso.slice(0, -5)}Z` : iso;
}
