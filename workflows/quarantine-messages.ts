/** The replayQuarantine workflow's input, progress query and result, declared once for the CLI and the workflow. */
import { defineQuery } from '@temporalio/workflow';

export const REPLAY_QUARANTINE_WORKFLOW = 'replayQuarantine';

export interface ReplayQuarantineInput {
  /** Arrival hours [from, to), RFC 3339. */
  from: string;
  to: string;
  reason?: string;
  /** SEGFLOW_SCHEDULE_PREFIX: prefixes the hourly runs and the reclassify workflows it starts. */
  idPrefix?: string;
  /** Real-time reclassification idle period (SEGFLOW_RECLASSIFY_IDLE_MINUTES). */
  idleMinutes: number;
  uiBaseUrl?: string;
  /** Rerun the touched hourly intervals (default true). */
  rerunHours?: boolean;
}

export type ReplayPhase = 'listing' | 'planning' | 'replaying' | 'rerunning' | 'done';

export interface ReplayProgress {
  phase: ReplayPhase;
  objects: number;
  objectsDone: number;
  examined: number;
  recovered: number;
  stillInvalid: number;
  reasonsChanged: number;
  suppressed: number;
  triggers: number;
  /** Arrival hours that got recovered events, ascending. */
  hours: string[];
  /** Hourly runs rerun so far, with their outcome. */
  reruns: Array<{ workflowId: string; status: 'completed' | 'failed' | 'running elsewhere' }>;
  /** Still-invalid reason codes, messages per code. */
  reasons: Record<string, number>;
  /** Set when the replay found nothing to recover and changed nothing. */
  nothingToRecover?: boolean;
}

export const replayProgressQuery = defineQuery<ReplayProgress>('replayProgress');

/** `<prefix>quarantine-replay/<from>..<to>[/<reason>]`: starting the same replay again resumes or repeats it. */
export function replayWorkflowId(input: Pick<ReplayQuarantineInput, 'from' | 'to' | 'reason' | 'idPrefix'>): string {
  return `${input.idPrefix ?? ''}quarantine-replay/${input.from}..${input.to}${input.reason ? `/${input.reason}` : ''}`;
}
