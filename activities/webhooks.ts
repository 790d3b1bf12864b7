/**
 * Segment-change webhooks: one signed POST per (change, subscriber) per attempt.
 *
 * Retrying is Temporal's job: a network error, a timeout, a 5xx, 408 or 429
 * throws a retryable failure and the workflow's retry policy backs off; any
 * other 4xx (and a redirect) means the receiver will never accept this request
 * as sent, so it fails for good instead of hammering the receiver. The body,
 * and the delivery id in it, are identical on every attempt so receivers can
 * drop duplicates; the signature timestamp is fresh on every attempt.
 */
import { asyncLocalStorage } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { CustomerIdSchema } from '../core/customer-id.js';
import { Rfc3339Timestamp } from '../core/events.js';
import { scrubSecrets, type Logger } from '../core/logger.js';
import type { ParentSegmentRef, SegmentRef } from '../core/profile.js';
import { filterMatches, subscriberHost, subscribersForChange, type WebhookSubscriber } from '../core/webhook-config.js';
import { DELIVERY_ID_HEADER, SIGNATURE_HEADER, signWebhook } from '../core/webhook-signature.js';

const ParentRefSchema = z.strictObject({
  id: z.number().int().min(0),
  label: z.string().min(1).max(256),
});

const SegmentRefSchema = z.strictObject({
  id: z.number().int().min(0),
  label: z.string().min(1).max(256),
  /** The parent segment (nested segments); null or absent when the model has no hierarchy. */
  parent: ParentRefSchema.nullable().optional(),
});

export const SegmentChangeSchema = z.strictObject({
  /** Stable across retries, e.g. `<workflowId>/<eventId>/<subscriberId>`; header-safe characters only. */
  deliveryId: z.string().regex(/^[A-Za-z0-9_.:@/-]{1,256}$/, { error: '1-256 characters from A-Z a-z 0-9 _ . : @ / -' }),
  customerId: CustomerIdSchema,
  oldSegment: SegmentRefSchema.nullable(),
  newSegment: SegmentRefSchema,
  modelVersion: z.string().min(1).max(128),
  occurredAt: Rfc3339Timestamp,
  subscriberId: z.string().min(1).max(64),
});
export type SegmentChangeDelivery = z.infer<typeof SegmentChangeSchema>;

/** The JSON body a subscriber receives (documented for receivers; snake_case on the wire). */
export interface SegmentChangeWebhookBody {
  delivery_id: string;
  customer_id: string;
  old_segment: { id: number; label: string } | null;
  new_segment: { id: number; label: string };
  /** The parent segments before and after (nested segments); null when there was none. A change of parent alone is a change. */
  old_parent_segment: ParentSegmentRef | null;
  new_parent_segment: ParentSegmentRef | null;
  model_version: string;
  occurred_at: string;
}

/** A `customer.forgotten` delivery: the ids of one page of a forget request, to one subscriber. */
export interface CustomerForgottenDelivery {
  deliveryId: string;
  subscriberId: string;
  requestId: string;
  customerIds: readonly string[];
  occurredAt: string;
}

/** The JSON body of a `customer.forgotten` delivery (snake_case on the wire). */
export interface CustomerForgottenWebhookBody {
  delivery_id: string;
  type: 'customer.forgotten';
  request_id: string;
  customer_ids: string[];
  occurred_at: string;
}

export interface WebhookDeliveryResult {
  subscriberId: string;
  delivered: boolean;
  /** Set when not delivered because the subscriber's filter does not ask for this change. */
  skipped?: 'filtered';
  status?: number;
  attempt: number;
  durationMs: number;
}

export interface WebhookActivityDeps {
  subscribers: readonly WebhookSubscriber[];
  logger: Logger;
  fetchImpl?: typeof fetch;
}

export const WEBHOOK_USER_AGENT = 'segflow-webhooks/1';
const ERROR_BODY_PREVIEW = 200;

function parentOf(segment: SegmentChangeDelivery['oldSegment']): ParentSegmentRef | null {
  const parent = segment?.parent ?? null;
  return parent === null ? null : { id: parent.id, label: parent.label };
}

function bodyOf(change: SegmentChangeDelivery): SegmentChangeWebhookBody {
  return {
    delivery_id: change.deliveryId,
    customer_id: change.customerId,
    old_segment: change.oldSegment === null ? null : { id: change.oldSegment.id, label: change.oldSegment.label },
    new_segment: { id: change.newSegment.id, label: change.newSegment.label },
    old_parent_segment: parentOf(change.oldSegment),
    new_parent_segment: parentOf(change.newSegment),
    model_version: change.modelVersion,
    occurred_at: change.occurredAt,
  };
}

async function preview(response: Response): Promise<string> {
  try {
    const text = await response.text();
    return text.length > ERROR_BODY_PREVIEW ? `${text.slice(0, ERROR_BODY_PREVIEW)}...` : text;
  } catch {
    return '';
  }
}

/** What of a subscriber's configuration must not be quoted back: its secret, and its URL and the parts that may be tokens. */
function secretsOf(subscriber: WebhookSubscriber): string[] {
  const out = [subscriber.secret, subscriber.url];
  try {
    const url = new URL(subscriber.url);
    if (url.pathname.length > 1) out.push(`${url.pathname}${url.search}`, url.pathname);
    for (const value of url.searchParams.values()) out.push(value);
    for (const segment of url.pathname.split('/')) if (segment.length >= 16) out.push(segment);
  } catch {
    // The URL was validated with the configuration; nothing more to add.
  }
  return out.sort((a, b) => b.length - a.length);
}

/** Retry-After in seconds or as an HTTP date, as milliseconds; undefined when absent or unusable. */
function retryAfterMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(ms) && ms > 0 ? Math.min(ms, 3_600_000) : undefined;
}

export function createWebhookActivities({ subscribers, logger, fetchImpl = fetch }: WebhookActivityDeps) {
  const byId = new Map(subscribers.map((s) => [s.id, s]));
  const log = logger.child({ component: 'webhooks' });

  function subscriberOrFail(id: string): WebhookSubscriber {
    const subscriber = byId.get(id);
    if (subscriber === undefined) {
      throw ApplicationFailure.nonRetryable(
        `webhook subscriber "${id}" is not configured (known: ${[...byId.keys()].join(', ') || 'none'}); check SEGFLOW_WEBHOOKS`,
        'UnknownWebhookSubscriber',
      );
    }
    return subscriber;
  }

  /** Ids of the subscribers whose filter asks for this change, so a workflow can fan out one delivery each. */
  async function subscribersForSegmentChange(change: { oldSegment: SegmentRef | null; newSegment: SegmentRef }): Promise<string[]> {
    return subscribersForChange(subscribers, change.oldSegment, change.newSegment).map((s) => s.id);
  }

  async function deliverSegmentChange(input: SegmentChangeDelivery): Promise<WebhookDeliveryResult> {
    const parsed = SegmentChangeSchema.safeParse(input);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: expected ${i.message}`);
      throw ApplicationFailure.nonRetryable(`invalid segment-change delivery: ${problems.join('; ')}`, 'InvalidWebhookDelivery');
    }
    const change = parsed.data;
    const ctx = asyncLocalStorage.getStore();
    const attempt = ctx?.info.attempt ?? 1;
    const subscriber = subscriberOrFail(change.subscriberId);
    const dlog = log.child({
      subscriberId: subscriber.id,
      host: subscriberHost(subscriber),
      deliveryId: change.deliveryId,
      customerId: change.customerId,
      attempt,
    });
    if (!filterMatches(subscriber.filter, change.oldSegment, change.newSegment)) {
      dlog.debug('segment change not in the subscriber filter; not sent');
      return { subscriberId: subscriber.id, delivered: false, skipped: 'filtered', attempt, durationMs: 0 };
    }

    return post(subscriber, change.deliveryId, JSON.stringify(bodyOf(change)), dlog, attempt, ctx);
  }

  /**
   * One signed `customer.forgotten` delivery to one subscriber (every subscriber gets it, whatever
   * its filter): the ids a forget request removed, so the receiver deletes its copies too.
   */
  async function deliverCustomerForgotten(input: CustomerForgottenDelivery): Promise<WebhookDeliveryResult> {
    const ctx = asyncLocalStorage.getStore();
    const attempt = ctx?.info.attempt ?? 1;
    const subscriber = subscriberOrFail(input.subscriberId);
    const body: CustomerForgottenWebhookBody = {
      delivery_id: input.deliveryId,
      type: 'customer.forgotten',
      request_id: input.requestId,
      customer_ids: [...input.customerIds],
      occurred_at: input.occurredAt,
    };
    // The ids are not logged: the log would keep what the request removes.
    const dlog = log.child({ subscriberId: subscriber.id, host: subscriberHost(subscriber), deliveryId: input.deliveryId, attempt });
    return post(subscriber, input.deliveryId, JSON.stringify(body), dlog, attempt, ctx);
  }

  async function post(
    subscriber: WebhookSubscriber,
    deliveryId: string,
    body: string,
    dlog: Logger,
    attempt: number,
    ctx: ReturnType<typeof asyncLocalStorage.getStore>,
  ): Promise<WebhookDeliveryResult> {
    const t0 = Date.now();
    const timeout = AbortSignal.timeout(subscriber.timeout_ms);
    const signal = ctx ? AbortSignal.any([timeout, ctx.cancellationSignal]) : timeout;
    let response: Response;
    try {
      response = await fetchImpl(subscriber.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': WEBHOOK_USER_AGENT,
          [SIGNATURE_HEADER]: signWebhook(subscriber.secret, body),
          [DELIVERY_ID_HEADER]: deliveryId,
        },
        body,
        // A redirect would re-send a signed body somewhere nobody configured.
        redirect: 'manual',
        signal,
      });
    } catch (err) {
      if (ctx?.cancellationSignal.aborted) throw err;
      const reason = timeout.aborted
        ? `no response within ${subscriber.timeout_ms} ms`
        : scrubSecrets(
            `${err instanceof Error ? err.message : String(err)}${err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : ''}`,
            secretsOf(subscriber),
          );
      dlog.warn({ error: reason, durationMs: Date.now() - t0 }, 'webhook delivery failed; Temporal will retry');
      throw ApplicationFailure.retryable(`webhook ${subscriber.id} (${subscriberHost(subscriber)}): ${reason}`, 'WebhookDeliveryFailed');
    }

    const status = response.status;
    const durationMs = Date.now() - t0;
    if (response.ok) {
      await response.arrayBuffer().catch(() => undefined);
      dlog.info({ status, durationMs }, 'webhook delivered');
      return { subscriberId: subscriber.id, delivered: true, status, attempt, durationMs };
    }

    // Receivers echo their URL in errors, and a webhook URL often is a credential: the answer
    // goes into logs, the alert and the workflow history without it.
    const detail = scrubSecrets(await preview(response), secretsOf(subscriber));
    const what = `webhook ${subscriber.id} (${subscriberHost(subscriber)}) answered HTTP ${status}${detail ? `: ${detail}` : ''}`;
    if (status >= 500 || status === 408 || status === 429) {
      dlog.warn({ status, durationMs }, 'webhook delivery failed; Temporal will retry');
      throw ApplicationFailure.create({
        message: what,
        type: 'WebhookDeliveryFailed',
        nonRetryable: false,
        nextRetryDelay: status === 429 || status === 503 ? retryAfterMs(response.headers.get('retry-after')) : undefined,
      });
    }
    const advice =
      status >= 300 && status < 400
        ? `; the receiver redirects (to ${response.headers.get('location') ?? 'an unnamed location'}): configure its final URL`
        : '; the receiver refuses this request (check its URL and secret); not retried';
    dlog.error({ status, durationMs }, 'webhook rejected; giving up on this delivery');
    throw ApplicationFailure.nonRetryable(what + advice, 'WebhookRejected');
  }

  return { deliverSegmentChange, deliverCustomerForgotten, subscribersForSegmentChange };
}

export type WebhookActivities = ReturnType<typeof createWebhookActivities>;
