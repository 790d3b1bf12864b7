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
  /** How many times this ingestion continued as new (its history was renewed). */
  generation: number;
}

export const ingestStatsQuery = defineQuery<IngestCounters>('ingestStats');
export const pauseIngestSignal = defineSignal<[reason?: string]>('pause');
export const resumeIngestSignal = defineSignal('resume');

export function ingestWorkflowId(subscription: string): string {
  return `ingest/${subscription}`;
}
