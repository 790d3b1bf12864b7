/**
 * The operations behind `npm run ops -- quarantine`: a summary of what the quarantine holds, a
 * sample of messages for one reason, and a replay run as the replayQuarantine workflow. Each
 * returns typed data; printing is ops-quarantine.ts's.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import type { Storage } from '@google-cloud/storage';
import { REASON_CODES } from '../core/events.js';
import { sampleOf, summarizeQuarantine, type QuarantineSample, type QuarantineSummary } from '../core/quarantine-summary.js';
import { workflowUiUrl } from '../core/temporal-connection.js';
import { createQuarantineStore } from '../stores/quarantine.js';
import {
  REPLAY_QUARANTINE_WORKFLOW,
  replayProgressQuery,
  replayWorkflowId,
  type ReplayProgress,
  type ReplayQuarantineInput,
} from '../workflows/quarantine-messages.js';
import { OpsError, parseInstantOption, type OpsContext } from './ops-lib.js';

export interface QuarantineContext extends OpsContext {
  readonly storage: Storage;
}

export interface TimeRange {
  from: string;
  to: string;
}

/** Validates --from/--to (RFC 3339, from < to) and returns them in canonical form. */
export function parseRange(o: { from?: string; to?: string }): TimeRange {
  if (o.from === undefined || o.to === undefined)
    throw new OpsError('--from and --to are required, e.g. --from 2026-11-26T00:00:00Z --to 2026-11-27T00:00:00Z.');
  const from = parseInstantOption(o.from, '--from');
  const to = parseInstantOption(o.to, '--to');
  if (from >= to) throw new OpsError(`--from must be before --to; found ${o.from} .. ${o.to}.`);
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString() };
}

export function parseReason(reason: string | undefined): string | undefined {
  if (reason !== undefined && !(REASON_CODES as readonly string[]).includes(reason)) {
    throw new OpsError(`Unknown reason code "${reason}". Known codes: ${REASON_CODES.join(', ')}.`);
  }
  return reason;
}

const storeOf = (ctx: QuarantineContext) => createQuarantineStore({ storage: ctx.storage, bucket: ctx.config.lake.bucket });

export async function quarantineSummary(ctx: QuarantineContext, range: TimeRange): Promise<QuarantineSummary> {
  const store = storeOf(ctx);
  const objects = await store.listObjects(new Date(range.from), new Date(range.to));
  const read = await Promise.all(objects.map(async (o) => ({ hour: o.hour, records: await store.readObject(o.name) })));
  const recovered = await store.readRecovered(new Date(range.from), new Date(range.to));
  return summarizeQuarantine(range, read, new Set(recovered.map((r) => r.message_id)).size);
}

export interface QuarantineShow extends TimeRange {
  reason: string;
  /** Messages with this reason in the range. */
  matching: number;
  samples: QuarantineSample[];
}

export async function quarantineShow(ctx: QuarantineContext, range: TimeRange, reason: string, limit: number): Promise<QuarantineShow> {
  const store = storeOf(ctx);
  const samples: QuarantineSample[] = [];
  let matching = 0;
  for (const o of await store.listObjects(new Date(range.from), new Date(range.to))) {
    for (const record of await store.readObject(o.name)) {
      if (!record.reasons.some((r) => r.code === reason)) continue;
      matching += 1;
      if (samples.length < limit) samples.push(sampleOf(record));
    }
  }
  return { ...range, reason, matching, samples };
}

export interface ReplayStarted {
  workflowId: string;
  url: string;
  /** False when a run of this replay was already going: the CLI follows it (resume). */
  started: boolean;
}

export async function startReplay(ctx: OpsContext, range: TimeRange, reason: string | undefined): Promise<ReplayStarted> {
  const input: ReplayQuarantineInput = {
    ...range,
    ...(reason === undefined ? {} : { reason }),
    idPrefix: ctx.config.schedules.prefix,
    idleMinutes: ctx.config.reclassify.idleMinutes,
    uiBaseUrl: ctx.config.temporal.uiUrl,
  };
  const workflowId = replayWorkflowId(input);
  const url = workflowUiUrl(ctx.config.temporal.uiUrl, ctx.config.temporal.namespace, workflowId);
  try {
    await ctx.client.workflow.start(REPLAY_QUARANTINE_WORKFLOW, {
      workflowId,
      taskQueue: ctx.config.temporal.taskQueue,
      args: [input],
      staticSummary: `quarantine replay ${range.from} .. ${range.to}${reason ? ` (${reason})` : ''}`,
    });
    return { workflowId, url, started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { workflowId, url, started: false };
    throw err;
  }
}

/** Follows a replay until it ends, calling onProgress with each new state; returns the result. */
export async function followReplay(
  ctx: OpsContext,
  workflowId: string,
  opts: { onProgress?: (p: ReplayProgress) => void; pollMs?: number } = {},
): Promise<ReplayProgress> {
  const handle = ctx.client.workflow.getHandle(workflowId);
  const result = handle.result() as Promise<ReplayProgress>;
  let done = false;
  void result.finally(() => (done = true)).catch(() => undefined);
  while (!done) {
    try {
      opts.onProgress?.(await handle.query(replayProgressQuery));
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new OpsError(`No replay "${workflowId}".`);
      // A query can fail while the workflow moves between workers; the next poll tries again.
    }
    await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, opts.pollMs ?? 2000))]);
  }
  return result;
}
