/**
 * Alerts as data: what went wrong, where, and a link to look at it. Built in workflows
 * (deterministically) and delivered by the `raiseAlert` activity.
 */

export type AlertSeverity = 'critical' | 'error' | 'warning' | 'info';

export type AlertKind = 'dag_run_failed' | 'dag_deadline_missed' | 'data_anomaly' | 'ingestion_lag' | 'webhook_delivery_failed';

/** Most severe first; channels with a minimum severity compare ranks. */
export const ALERT_SEVERITIES: readonly AlertSeverity[] = ['critical', 'error', 'warning', 'info'];

export function severityAtLeast(severity: AlertSeverity, minimum: AlertSeverity): boolean {
  return ALERT_SEVERITIES.indexOf(severity) <= ALERT_SEVERITIES.indexOf(minimum);
}

export interface AlertLink {
  readonly label: string;
  readonly url: string;
}

export interface Alert {
  readonly kind: AlertKind;
  readonly severity: AlertSeverity;
  /** One line, fit for a chat message title or a pager. */
  readonly summary: string;
  readonly message: string;
  /**
   * Same key for the same problem, so receivers collapse repeats (a retried delivery, a rerun
   * failing again on the same interval) into one incident.
   */
  readonly dedupKey: string;
  readonly occurredAt: string;
  readonly dagId?: string;
  readonly taskIds?: readonly string[];
  readonly interval?: { readonly start: string; readonly end: string };
  readonly workflow?: { readonly namespace: string; readonly workflowId: string; readonly runId: string };
  readonly links: readonly AlertLink[];
}

/** Parts joined with `/`; keep them stable (ids, interval starts), never timestamps of now. */
export function alertDedupKey(kind: AlertKind, ...parts: readonly string[]): string {
  return [kind, ...parts].join('/');
}

export interface WorkflowLinkParams {
  readonly uiBaseUrl: string;
  readonly namespace: string;
  readonly workflowId: string;
  readonly runId?: string;
}

/** The run's page in the Temporal Web UI (v2 routes). */
export function temporalUiWorkflowUrl({ uiBaseUrl, namespace, workflowId, runId }: WorkflowLinkParams): string {
  const base = uiBaseUrl.replace(/\/+$/, '');
  // Workflow ids carry `/` and `:` (`hourly_pipeline/2026-11-26T09:00:00Z`), so each part is escaped.
  const path = `/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId === undefined ? `${base}${path}` : `${base}${path}/${encodeURIComponent(runId)}/history`;
}

export interface DagRunFailedAlertParams {
  readonly dagId: string;
  readonly interval: { readonly start: string; readonly end: string };
  readonly failedTasks: readonly { readonly taskId: string; readonly attempts: number; readonly error: string }[];
  readonly workflow: { readonly namespace: string; readonly workflowId: string; readonly runId: string };
  readonly uiBaseUrl?: string;
  readonly occurredAt: string;
  readonly rerunOf?: string;
}

export function dagRunFailedAlert(params: DagRunFailedAlertParams): Alert {
  const { dagId, interval, failedTasks, workflow } = params;
  const taskIds = failedTasks.map((t) => t.taskId);
  const lines = failedTasks.map((t) => `- ${t.taskId} failed after ${t.attempts} attempt${t.attempts === 1 ? '' : 's'}: ${t.error}`);
  if (params.rerunOf !== undefined) lines.push(`This run repeats run ${params.rerunOf}.`);
  return {
    kind: 'dag_run_failed',
    severity: 'error',
    summary: `DAG ${dagId} failed for ${interval.start}..${interval.end}: ${taskIds.join(', ')}`,
    message: lines.join('\n'),
    // DAG, task(s) and interval: a rerun failing the same way joins the same incident.
    dedupKey: alertDedupKey('dag_run_failed', dagId, [...taskIds].sort().join(','), interval.start),
    occurredAt: params.occurredAt,
    dagId,
    taskIds,
    interval,
    workflow,
    links: temporalUiLinks(params.uiBaseUrl, workflow),
  };
}

/** The run's Temporal UI link for an alert, none when no UI base URL is configured. */
export function temporalUiLinks(
  uiBaseUrl: string | undefined,
  workflow: { readonly namespace: string; readonly workflowId: string; readonly runId: string },
): AlertLink[] {
  return uiBaseUrl === undefined ? [] : [{ label: 'Temporal UI', url: temporalUiWorkflowUrl({ uiBaseUrl, ...workflow }) }];
}
