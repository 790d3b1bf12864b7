/**
 * Webhook subscribers: who hears about segment changes, signed with which
 * secret, for which changes. Read from one JSON setting (SEGFLOW_WEBHOOKS), e.g.
 *
 *   [{"id":"crm","url":"https://crm.example.com/hooks/segflow","secret":"<32+ random chars>"},
 *    {"id":"email","url":"https://mail.example.com/in","secret":"...",
 *     "filter":{"into":["VIP", 3],"out_of":["VIP"]},"timeout_ms":5000}]
 *
 * `filter` is "*" (every change, the default) or {into, out_of}: a change is
 * sent when the new segment is listed in `into` or the old one in `out_of`.
 * A number names a segment id, a string a segment label.
 */
import { z } from 'zod';
import type { SegmentRef } from './profile.js';

export const WEBHOOKS_VARIABLE = 'SEGFLOW_WEBHOOKS';
export const WEBHOOK_SECRET_MIN_LENGTH = 16;
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;

const segmentSelector = z.union([z.number().int().min(0), z.string().min(1).max(256)], {
  error: 'a segment id (whole number) or a segment label (string)',
});

const selectorList = z.array(segmentSelector).min(1, { error: 'a non-empty list of segment ids or labels' });

export const WebhookFilterSchema = z.union(
  [
    z.literal('*'),
    z
      .strictObject({ into: selectorList.optional(), out_of: selectorList.optional() })
      .refine((f) => f.into !== undefined || f.out_of !== undefined, { error: 'a filter naming segments in "into" and/or "out_of"' }),
  ],
  { error: '"*" or an object {"into": [...], "out_of": [...]}' },
);
export type WebhookFilter = z.infer<typeof WebhookFilterSchema>;

const httpUrl = z.url({ protocol: /^https?$/, error: 'an absolute http(s) URL' }).max(2048, { error: 'a URL of at most 2048 characters' });

const SUBSCRIBER_KEYS = ['id', 'url', 'secret', 'filter', 'timeout_ms'];

export const WebhookSubscriberSchema = z.strictObject(
  {
    id: z.string({ error: 'a subscriber id (string)' }).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, {
      error: 'a subscriber id of 1-64 letters, digits, _ . - (starting with a letter or digit)',
    }),
    url: httpUrl,
    secret: z.string({ error: 'a secret (string)' }).min(WEBHOOK_SECRET_MIN_LENGTH, {
      error: `a secret of at least ${WEBHOOK_SECRET_MIN_LENGTH} characters (use 32+ random characters)`,
    }),
    filter: WebhookFilterSchema.default('*'),
    timeout_ms: z
      .number({ error: 'a timeout in milliseconds (number)' })
      .int({ error: 'a whole number of milliseconds' })
      .min(100, { error: 'a timeout >= 100 ms' })
      .max(60_000, { error: 'a timeout <= 60000 ms' })
      .default(DEFAULT_WEBHOOK_TIMEOUT_MS),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `only the keys ${SUBSCRIBER_KEYS.join(', ')} (found ${issue.keys.map((k) => JSON.stringify(k)).join(', ')})`
        : 'a subscriber object such as {"id": "crm", "url": "https://...", "secret": "..."}',
  },
);
export type WebhookSubscriber = z.infer<typeof WebhookSubscriberSchema>;

export class WebhookConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'WebhookConfigError';
  }
}

export interface ParseWebhookOptions {
  /** Refuse plain http:// URLs (production). */
  requireHttps?: boolean;
  /** The setting's name in messages. */
  variable?: string;
}

const EXAMPLE = `[{"id":"crm","url":"https://crm.example.com/hooks/segflow","secret":"<32+ random characters>"}]`;

/**
 * Parse and validate the subscriber list. Unset or blank means no subscribers.
 * Throws WebhookConfigError naming every problem; secrets are never echoed.
 */
export function parseWebhookSubscribers(raw: string | undefined, options: ParseWebhookOptions = {}): WebhookSubscriber[] {
  const name = options.variable ?? WEBHOOKS_VARIABLE;
  if (raw === undefined || raw.trim() === '') return [];
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    // JSON.parse's own message quotes the input, which holds secrets.
    throw new WebhookConfigError([`${name}: expected a JSON array of subscribers, e.g. ${EXAMPLE}; found text that is not valid JSON`]);
  }
  const parsed = z
    .array(z.unknown(), { error: `a JSON array of subscribers, e.g. ${EXAMPLE}` })
    .pipe(z.array(WebhookSubscriberSchema))
    .safeParse(json);
  if (!parsed.success) {
    throw new WebhookConfigError(
      parsed.error.issues.map((issue) => {
        const where = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
        return `${name}${where}: expected ${issue.message}`;
      }),
    );
  }
  const problems: string[] = [];
  const seen = new Set<string>();
  parsed.data.forEach((s, i) => {
    if (seen.has(s.id)) problems.push(`${name}[${i}].id: expected a unique subscriber id; "${s.id}" appears more than once`);
    seen.add(s.id);
    if (options.requireHttps && !s.url.startsWith('https://')) {
      problems.push(`${name}[${i}].url: expected an https:// URL in production; subscriber "${s.id}" uses plain http`);
    }
  });
  if (problems.length > 0) throw new WebhookConfigError(problems);
  return parsed.data;
}

function selects(selector: number | string, segment: SegmentRef): boolean {
  return typeof selector === 'number' ? selector === segment.id : selector === segment.label;
}

/** Does a subscriber's filter ask for this change? */
export function filterMatches(filter: WebhookFilter, oldSegment: SegmentRef | null, newSegment: SegmentRef): boolean {
  if (filter === '*') return true;
  const into = filter.into?.some((s) => selects(s, newSegment)) ?? false;
  const outOf = oldSegment !== null && (filter.out_of?.some((s) => selects(s, oldSegment)) ?? false);
  return into || outOf;
}

/** The subscribers that want a change, in configuration order. */
export function subscribersForChange(
  subscribers: readonly WebhookSubscriber[],
  oldSegment: SegmentRef | null,
  newSegment: SegmentRef,
): WebhookSubscriber[] {
  return subscribers.filter((s) => filterMatches(s.filter, oldSegment, newSegment));
}

/** Where a subscriber lives, for logs: the URL itself may embed credentials. */
export function subscriberHost(subscriber: Pick<WebhookSubscriber, 'url'>): string {
  return new URL(subscriber.url).host;
}
