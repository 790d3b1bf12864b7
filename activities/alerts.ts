/**
 * Alert delivery: every alert is logged, then POSTed as JSON to each configured webhook.
 * A broken channel never fails the caller: it is retried a few times, logged, and given up on,
 * because a failed alert must not turn into a failed (or endlessly retried) pipeline.
 */
import { temporalUiWorkflowUrl, type Alert, type AlertLink } from '../core/alerts.js';

/** The part of a pino logger this module uses. */
export interface AlertLogger {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface AlertActivityDeps {
  readonly logger: AlertLogger;
  /** Generic JSON webhooks (Slack-, Mattermost- and Google-Chat-compatible through `text`). */
  readonly webhookUrls: readonly string[];
  /** Temporal Web UI base URL, to add a link to alerts that carry a workflow but no link. */
  readonly uiBaseUrl?: string;
  /** Waits between attempts per channel; its length + 1 is the number of attempts. */
  readonly retryDelaysMs?: readonly number[];
  readonly requestTimeoutMs?: number;
  readonly fetch?: typeof fetch;
}

export interface AlertDelivery {
  /** The webhook's host and position, not its URL: webhook URLs often embed their secret. */
  readonly channel: string;
  readonly delivered: boolean;
  readonly attempts: number;
  readonly error?: string;
}

export interface AlertDeliveryReport {
  readonly dedupKey: string;
  readonly deliveries: readonly AlertDelivery[];
}

/** What a webhook receives: the alert, plus `text` for chat tools that only read that. */
export type AlertWebhookBody = Alert & { readonly text: string };

const DEFAULT_RETRY_DELAYS_MS = [1_000, 3_000];
const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;

export function createAlertActivities(deps: AlertActivityDeps) {
  const doFetch = deps.fetch ?? fetch;
  const retryDelaysMs = deps.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  const timeoutMs = deps.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;

  async function deliver(url: string, channel: string, body: string, alert: Alert): Promise<AlertDelivery> {
    let lastError = 'not attempted';
    for (let attempt = 1; attempt <= retryDelaysMs.length + 1; attempt++) {
      let retryable = true;
      try {
        const response = await doFetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        // Drain the body so the connection can be reused.
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) return { channel, delivered: true, attempts: attempt };
        lastError = `HTTP ${response.status} ${response.statusText}`.trim();
        retryable = response.status === 408 || response.status === 429 || response.status >= 500;
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
      }
      const delay = retryDelaysMs[attempt - 1];
      if (!retryable || delay === undefined) {
        deps.logger.error(
          { channel, attempts: attempt, error: lastError, dedupKey: alert.dedupKey },
          'alert webhook failed; giving up on this channel',
        );
        return { channel, delivered: false, attempts: attempt, error: lastError };
      }
      deps.logger.warn({ channel, attempt, error: lastError, retryInMs: delay }, 'alert webhook failed; retrying');
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
    return { channel, delivered: false, attempts: retryDelaysMs.length + 1, error: lastError };
  }

  return {
    /** Logs and delivers an alert. Never throws: delivery problems are logged and reported. */
    async raiseAlert(alert: Alert): Promise<AlertDeliveryReport> {
      const complete = withUiLink(alert, deps.uiBaseUrl);
      const level = complete.severity === 'critical' || complete.severity === 'error' ? 'error' : complete.severity === 'warning' ? 'warn' : 'info';
      deps.logger[level]({ alert: complete }, `alert: ${complete.summary}`);

      const body = JSON.stringify(webhookBody(complete));
      const deliveries = await Promise.all(
        deps.webhookUrls.map((url, i) => deliver(url, channelName(url, i), body, complete)),
      );
      return { dedupKey: complete.dedupKey, deliveries };
    },
  };
}

export type AlertActivities = ReturnType<typeof createAlertActivities>;

function withUiLink(alert: Alert, uiBaseUrl: string | undefined): Alert {
  if (uiBaseUrl === undefined || alert.workflow === undefined || alert.links.some((l) => l.label === 'Temporal UI')) {
    return alert;
  }
  const link: AlertLink = { label: 'Temporal UI', url: temporalUiWorkflowUrl({ uiBaseUrl, ...alert.workflow }) };
  return { ...alert, links: [...alert.links, link] };
}

function webhookBody(alert: Alert): AlertWebhookBody {
  const text = [alert.summary, alert.message, ...alert.links.map((l) => `${l.label}: ${l.url}`)].join('\n');
  return { ...alert, text };
}

function channelName(url: string, index: number): string {
  try {
    return `webhook#${index + 1} (${new URL(url).host})`;
  } catch {
    return `webhook#${index + 1} (invalid URL)`;
  }
}
