/**
 * When ingestion raises an alert: its lag or its quarantine rate over a recent window passes a
 * threshold. Pure and deterministic (the ingestEvents workflow runs it after every batch
 * activity), so an alert is raised once when an episode starts, not on every batch, and the
 * episode ends when the measure is back under its threshold.
 */
import { alertDedupKey, type Alert } from './alerts.js';

export interface IngestAlertSettings {
  /** Lag (age of the oldest message of the last batch when it was written) that raises an alert; 0: never. */
  lagMs: number;
  /** Share of messages quarantined over the window that raises an alert; 1: never. */
  quarantineShare: number;
  windowMs: number;
  /** Fewer messages than this in the window say nothing about the rate. */
  minMessages: number;
}

/** One finished batch activity, as the workflow saw it. */
export interface IngestSample {
  /** When the activity finished (workflow time, ms). */
  at: number;
  pulled: number;
  quarantined: number;
  lagMs?: number;
  /** Quarantine reason codes and how many messages carried each. */
  reasons?: Record<string, number>;
}

/** Carried across continue-as-new, so an episode that spans runs alerts once. */
export interface IngestHealthState {
  window: IngestSample[];
  /** ISO start of the current episode, or absent when healthy. */
  lagSince?: string;
  quarantineSince?: string;
}

export interface IngestAlertContext {
  subscription: string;
  workflow: { namespace: string; workflowId: string; runId: string };
}

export interface IngestHealthReport {
  state: IngestHealthState;
  alerts: Alert[];
  /** Episodes that ended with this sample (for the log). */
  recovered: Array<'lag' | 'quarantine'>;
  quarantineShare?: number;
}

export function evaluateIngestHealth(
  previous: IngestHealthState,
  sample: IngestSample,
  settings: IngestAlertSettings,
  context: IngestAlertContext,
): IngestHealthReport {
  // Empty activities add nothing to the rate; leaving them out keeps the carried state small.
  const window = [...previous.window, ...(sample.pulled > 0 ? [sample] : [])].filter((s) => s.at > sample.at - settings.windowMs);
  const state: IngestHealthState = { window };
  const alerts: Alert[] = [];
  const recovered: IngestHealthReport['recovered'] = [];
  const now = new Date(sample.at).toISOString();

  // Lag is judged on batches that moved messages; an empty activity says nothing about it.
  if (sample.pulled > 0 && sample.lagMs !== undefined) {
    const over = settings.lagMs > 0 && sample.lagMs > settings.lagMs;
    if (over && previous.lagSince === undefined) alerts.push(lagAlert(sample.lagMs, settings, context, now));
    if (over) state.lagSince = previous.lagSince ?? now;
    else if (previous.lagSince !== undefined) recovered.push('lag');
  } else if (previous.lagSince !== undefined) {
    state.lagSince = previous.lagSince;
  }

  const pulled = window.reduce((n, s) => n + s.pulled, 0);
  const quarantined = window.reduce((n, s) => n + s.quarantined, 0);
  const share = pulled > 0 ? quarantined / pulled : undefined;
  const judged = pulled >= settings.minMessages && share !== undefined;
  const over = judged && settings.quarantineShare < 1 && share > settings.quarantineShare;
  if (over && previous.quarantineSince === undefined) {
    alerts.push(quarantineAlert({ pulled, quarantined, reasons: sumReasons(window) }, settings, context, now));
  }
  if (over) state.quarantineSince = previous.quarantineSince ?? now;
  else if (previous.quarantineSince !== undefined) recovered.push('quarantine');

  return { state, alerts, recovered, ...(share === undefined ? {} : { quarantineShare: share }) };
}

function lagAlert(lagMs: number, settings: IngestAlertSettings, ctx: IngestAlertContext, now: string): Alert {
  return {
    kind: 'ingestion_lag',
    severity: 'error',
    summary: `Ingestion of ${ctx.subscription} is ${duration(lagMs)} behind (threshold ${duration(settings.lagMs)})`,
    message:
      `The oldest message of the last batch written to the lake was published ${duration(lagMs)} before it was written. ` +
      'Messages wait in the subscription: check the ingestBatch activities of this workflow for failures, the worker count ' +
      'for the load, and the GCS bucket for errors. This alert is raised once; it clears when the lag is back under the threshold.',
    dedupKey: alertDedupKey('ingestion_lag', ctx.subscription, 'lag', now),
    occurredAt: now,
    workflow: ctx.workflow,
    links: [],
  };
}

function quarantineAlert(
  w: { pulled: number; quarantined: number; reasons: Record<string, number> },
  settings: IngestAlertSettings,
  ctx: IngestAlertContext,
  now: string,
): Alert {
  const reasons = Object.entries(w.reasons)
    .sort(([, a], [, b]) => b - a)
    .map(([code, n]) => `${code}: ${n}`)
    .join(', ');
  return {
    kind: 'data_anomaly',
    severity: 'warning',
    summary:
      `Ingestion of ${ctx.subscription} quarantined ${percent(w.quarantined / w.pulled)} of ${w.pulled} messages ` +
      `in ${duration(settings.windowMs)} (threshold ${percent(settings.quarantineShare)})`,
    message:
      `${w.quarantined} of ${w.pulled} messages failed validation and went to quarantine/events/v1/ ` +
      `(reasons: ${reasons === '' ? 'not reported' : reasons}). A producer is probably sending malformed events; ` +
      'each quarantined record carries its raw bytes and every reason. This alert is raised once per episode.',
    dedupKey: alertDedupKey('data_anomaly', ctx.subscription, 'quarantine_rate', now),
    occurredAt: now,
    workflow: ctx.workflow,
    links: [],
  };
}

function sumReasons(window: readonly IngestSample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of window) for (const [code, n] of Object.entries(s.reasons ?? {})) out[code] = (out[code] ?? 0) + n;
  return out;
}

function percent(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 120 ? `${m} min` : `${(m / 60).toFixed(1)} h`;
}
