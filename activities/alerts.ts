/**
 * Alert delivery: every alert is logged, then sent to each configured channel: generic JSON
 * webhooks, a Slack incoming webhook, PagerDuty Events v2. A broken channel never fails the
 * caller: it is retried a few times, logged, and given up on, because a failed alert must not
 * turn into a failed (or endlessly retried) pipeline.
 */
import { severityAtLeast, temporalUiWorkflowUrl, type Alert, type AlertLink, type AlertSeverity } from '../core/alerts.js';
import { scrubSecrets } from '../core/logger.js';

/** The part of a pino logger this module uses. */
export interface AlertLogger {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface PagerDutyChannelConfig {
  readonly routingKey: string;
  /** Events v2 enqueue endpoint; https://events.pagerduty.com/v2/enqueue in production. */
  readonly url: string;
  /** Alerts below this severity do not page. */
  readonly minSeverity: AlertSeverity;
}

export interface AlertActivityDeps {
  readonly logger: AlertLogger;
  /** Generic JSON webhooks (Slack-, Mattermost- and Google-Chat-compatible through `text`). */
  readonly webhookUrls: readonly string[];
  /** A Slack incoming webhook: gets a formatted message (blocks) instead of the raw alert. */
  readonly slackWebhookUrl?: string;
  readonly pagerDuty?: PagerDutyChannelConfig;
  /** Temporal Web UI base URL, to add a link to alerts that carry a workflow but no link. */
  readonly uiBaseUrl?: string;
  /** Waits between attempts per channel; its length + 1 is the number of attempts. */
  readonly retryDelaysMs?: readonly number[];
  readonly requestTimeoutMs?: number;
  readonly fetch?: typeof fetch;
}

/** The alert channel settings of the configuration (core/config.ts `alerts`). */
export interface AlertChannelsConfig {
  readonly webhookUrls: readonly string[];
  readonly slackWebhookUrl?: string;
  readonly pagerDuty?: PagerDutyChannelConfig;
}

/** Deps for createAlertActivities from the one place alert channels are configured. */
export function alertDepsFromConfig(alerts: AlertChannelsConfig, logger: AlertLogger, uiBaseUrl?: string): AlertActivityDeps {
  return {
    logger,
    webhookUrls: alerts.webhookUrls,
    ...(alerts.slackWebhookUrl === undefined ? {} : { slackWebhookUrl: alerts.slackWebhookUrl }),
    ...(alerts.pagerDuty === undefined ? {} : { pagerDuty: alerts.pagerDuty }),
    ...(uiBaseUrl === undefined ? {} : { uiBaseUrl }),
  };
}

export interface AlertDelivery {
  /** The channel's kind, position and host, not its URL: webhook URLs often embed their secret. */
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

interface Channel {
  readonly name: string;
  readonly url: string;
  /** The request body for an alert, or undefined when this channel does not take it. */
  body(alert: Alert): unknown;
}

export function createAlertActivities(deps: AlertActivityDeps) {
  const doFetch = deps.fetch ?? fetch;
  const retryDelaysMs = deps.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  const timeoutMs = deps.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const channels = buildChannels(deps);

  async function deliver(channel: Channel, body: string, alert: Alert): Promise<AlertDelivery> {
    const name = channel.name;
    let lastError = 'not attempted';
    for (let attempt = 1; attempt <= retryDelaysMs.length + 1; attempt++) {
      let retryable = true;
      try {
        const response = await doFetch(channel.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        // Drain the body so the connection can be reused.
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) return { channel: name, delivered: true, attempts: attempt };
        lastError = `HTTP ${response.status} ${response.statusText}`.trim();
        retryable = response.status === 408 || response.status === 429 || response.status >= 500;
      } catch (err) {
        // fetch quotes a URL that carries credentials in its error; channel URLs are secrets.
        lastError = scrubSecrets(errorText(err), [channel.url]);
      }
      const delay = retryDelaysMs[attempt - 1];
      if (!retryable || delay === undefined) {
        deps.logger.error(
          { channel: name, attempts: attempt, error: lastError, dedupKey: alert.dedupKey },
          'alert delivery failed; giving up on this channel',
        );
        return { channel: name, delivered: false, attempts: attempt, error: lastError };
      }
      deps.logger.warn({ channel: name, attempt, error: lastError, retryInMs: delay }, 'alert delivery failed; retrying');
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
    return { channel: name, delivered: false, attempts: retryDelaysMs.length + 1, error: lastError };
  }

  return {
    /** Logs and delivers an alert. Never throws: delivery problems are logged and reported. */
    async raiseAlert(alert: Alert): Promise<AlertDeliveryReport> {
      const complete = withUiLink(alert, deps.uiBaseUrl);
      const level =
        complete.severity === 'critical' || complete.severity === 'error' ? 'error' : complete.severity === 'warning' ? 'warn' : 'info';
      deps.logger[level]({ alert: complete }, `alert: ${complete.summary}`);

      const deliveries = await Promise.all(
        channels.flatMap((channel) => {
          const body = channel.body(complete);
          return body === undefined ? [] : [deliver(channel, JSON.stringify(body), complete)];
        }),
      );
      return { dedupKey: complete.dedupKey, deliveries };
    },
  };
}

export type AlertActivities = ReturnType<typeof createAlertActivities>;

function buildChannels(deps: AlertActivityDeps): Channel[] {
  const channels: Channel[] = deps.webhookUrls.map((url, i) => ({
    name: `webhook#${i + 1} (${hostOf(url)})`,
    url,
    body: webhookBody,
  }));
  if (deps.slackWebhookUrl !== undefined) {
    channels.push({ name: `slack (${hostOf(deps.slackWebhookUrl)})`, url: deps.slackWebhookUrl, body: slackBody });
  }
  const pd = deps.pagerDuty;
  if (pd !== undefined) {
    channels.push({
      name: `pagerduty (${hostOf(pd.url)})`,
      url: pd.url,
      body: (alert) => (severityAtLeast(alert.severity, pd.minSeverity) ? pagerDutyBody(alert, pd.routingKey) : undefined),
    });
  }
  return channels;
}

function withUiLink(alert: Alert, uiBaseUrl: string | undefined): Alert {
  if (uiBaseUrl === undefined || alert.workflow === undefined || alert.links.some((l) => l.label === 'Temporal UI')) {
    return alert;
  }
  const link: AlertLink = { label: 'Temporal UI', url: temporalUiWorkflowUrl({ uiBaseUrl, ...alert.workflow }) };
  return { ...alert, links: [...alert.links, link] };
}

export function webhookBody(alert: Alert): AlertWebhookBody {
  const text = [alert.summary, alert.message, ...alert.links.map((l) => `${l.label}: ${l.url}`)].join('\n');
  return { ...alert, text };
}

const SEVERITY_EMOJI: Readonly<Record<AlertSeverity, string>> = {
  critical: ':rotating_light:',
  error: ':red_circle:',
  warning: ':warning:',
  info: ':information_source:',
};

/** Slack escapes only these three in mrkdwn. */
function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A Slack incoming-webhook message: `text` for notifications, blocks for the channel. */
export function slackBody(alert: Alert): { text: string; blocks: unknown[] } {
  const fields: string[] = [`*Severity*\n${alert.severity}`];
  if (alert.dagId !== undefined) fields.push(`*DAG*\n${slackEscape(alert.dagId)}`);
  if (alert.taskIds !== undefined && alert.taskIds.length > 0) fields.push(`*Task*\n${slackEscape(alert.taskIds.join(', '))}`);
  if (alert.interval !== undefined) fields.push(`*Interval*\n${alert.interval.start} .. ${alert.interval.end}`);
  const blocks: unknown[] = [
    { type: 'section', text: { type: 'mrkdwn', text: `${SEVERITY_EMOJI[alert.severity]} *${slackEscape(alert.summary)}*` } },
    { type: 'section', fields: fields.map((text) => ({ type: 'mrkdwn', text })) },
  ];
  if (alert.message !== '') {
    // Section text is limited to 3000 characters.
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: '```' + slackEscape(alert.message).slice(0, 2_900) + '```' } });
  }
  if (alert.links.length > 0) {
    blocks.push({
      type: 'actions',
      elements: alert.links.slice(0, 5).map((l) => ({ type: 'button', text: { type: 'plain_text', text: l.label }, url: l.url })),
    });
  }
  blocks.push({
    type: 'context',
    elements: [{ type: 'mrkdwn', text: `dedup key \`${slackEscape(alert.dedupKey)}\` · ${alert.occurredAt}` }],
  });
  return { text: `[${alert.severity}] ${alert.summary}`, blocks };
}

/** PagerDuty Events v2 knows critical, error, warning, info: the same four as segflow. */
export const PAGERDUTY_SEVERITY: Readonly<Record<AlertSeverity, 'critical' | 'error' | 'warning' | 'info'>> = {
  critical: 'critical',
  error: 'error',
  warning: 'warning',
  info: 'info',
};

/** A PagerDuty Events v2 `trigger`; dedup_key is the alert's, so repeats join one incident. */
export function pagerDutyBody(alert: Alert, routingKey: string) {
  return {
    routing_key: routingKey,
    event_action: 'trigger' as const,
    // PagerDuty limits dedup_key to 255 characters.
    dedup_key: alert.dedupKey.slice(0, 255),
    payload: {
      summary: alert.summary.slice(0, 1_024),
      source: alert.workflow?.workflowId ?? alert.dagId ?? 'segflow',
      severity: PAGERDUTY_SEVERITY[alert.severity],
      timestamp: alert.occurredAt,
      component: alert.dagId ?? 'segflow',
      ...(alert.taskIds === undefined ? {} : { group: alert.taskIds.join(',') }),
      class: alert.kind,
      custom_details: {
        message: alert.message,
        ...(alert.interval === undefined ? {} : { interval: alert.interval }),
        ...(alert.workflow === undefined ? {} : { workflow: alert.workflow }),
      },
    },
    links: alert.links.map((l) => ({ href: l.url, text: l.label })),
  };
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'invalid URL';
  }
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // fetch wraps the real reason (ECONNREFUSED, ...) in `cause`.
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}
