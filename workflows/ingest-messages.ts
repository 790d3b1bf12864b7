/** Queries and signals of the ingestEvents workflow, shared by workflow and clients. */
import { defineQuery, defineSignal } from '@temporalio/workflow';

export interface IngestCounters {
  pulled: number;
  written: number;
  quarantined: number;
  batches: number;
  objects: number;
  /** ISO time the last non-empty batch finished. */
  lastBatchAt?: string;
  /** Age in ms of the oldest message of the last non-empty batch when it finished. */
  lagMs?: number;
  paused: boolean;
  /** Lag and quarantine-rate alerting (runs started with the ingest-alerts patch). */
  alerts?: {
    /** Alerts raised so far: one per episode. */
    raised: number;
    /** ISO start of an ongoing episode. */
    lagSince?: string;
    quarantineSince?: string;
    /** Share of the messages in the recent window that were quarantined. */
    quarantineShare?: number;
  };
  /** How many times this ingestion continued as new (its history was renewed). */
  generation: number;
}

export const ingestStatsQuery = defineQuery<IngestCounters>('ingestStats');
export const pauseIngestSignal = defineSignal<[reason?: string]>('pause');
export const resumeIngestSignal = defineSignal('resume');

export function ingestWorkflowId(subscription: string): string {
  return `ingest/${subscription}`;
}
