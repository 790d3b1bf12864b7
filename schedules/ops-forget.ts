/**
 * `npm run ops -- forget`: forget customers everywhere (docs/privacy.md).
 *
 *   forget <ids...> [--file ids.txt] --note "..." [--dry-run]   store the request, start forget/<requestId>, follow it
 *   forget --status <requestId>                                  per store: found, removed; the verification; the audit
 *
 * The request id is derived from the set of ids, so asking again for the same customers finds the
 * first request (running: followed; done: reported, nothing changed). A dry run is a request of its
 * own that only counts; after a request it is the verification pass on demand (all zero).
 */
import { WorkflowIdReusePolicy, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { isCustomerId } from '../core/customer-id.js';
import { forgetRequestId } from '../core/privacy.js';
import { closeGcpClients, createGcpClients } from '../stores/clients.js';
import { createForgetRequestStore, type ForgetAuditRecord } from '../stores/forget-requests.js';
import {
  FORGET_STORES,
  FORGET_WORKFLOW,
  forgetProgressQuery,
  forgetWorkflowId,
  type ForgetInput,
  type ForgetProgress,
} from '../workflows/forget-messages.js';
import { toJson } from './ops-format.js';
import { OpsError, type OpsContext } from './ops-lib.js';

/** Temporal keeps closed histories this long at most before the legal deadline is at risk (docs/privacy.md). */
export const LEGAL_DEADLINE_DAYS = 30;

export interface ForgetStatus {
  requestId: string;
  workflowId: string;
  /** RUNNING, COMPLETED, FAILED, ...; `unknown` once Temporal no longer keeps the run. */
  workflowStatus: string;
  progress?: ForgetProgress;
  audit?: ForgetAuditRecord;
  /** Days Temporal keeps closed histories in this namespace; a warning when above the deadline. */
  historyRetentionDays?: number;
  warnings: string[];
}

export interface ForgetRequestOutcome extends ForgetStatus {
  /** `started`, `running` (an earlier request for the same ids, followed), or `already-done` (nothing changed). */
  outcome: 'started' | 'running' | 'already-done';
}

interface ForgetOptions {
  file?: string;
  note?: string;
  dryRun?: boolean;
  status?: string;
  wait: boolean;
  by?: string;
  json?: boolean;
}

async function readIds(args: readonly string[], file: string | undefined): Promise<string[]> {
  const ids = [...args];
  if (file !== undefined) {
    const text = await readFile(file, 'utf8').catch((err: unknown) => {
      throw new OpsError(`--file ${file}: cannot read it (${err instanceof Error ? err.message : String(err)})`);
    });
    for (const line of text.split('\n')) {
      const id = line.trim();
      if (id !== '' && !id.startsWith('#')) ids.push(id);
    }
  }
  const invalid = ids.filter((id) => !isCustomerId(id));
  if (invalid.length > 0) {
    throw new OpsError(
      `${invalid.length} of ${ids.length} ids are not customer ids (first: line or argument ${ids.indexOf(invalid[0]!) + 1}); fix them and retry`,
    );
  }
  if (ids.length === 0) throw new OpsError('forget: expected customer ids as arguments or in --file, found none');
  return [...new Set(ids)];
}

async function retentionDays(ctx: OpsContext): Promise<number | undefined> {
  try {
    const ns = await ctx.client.workflowService.describeNamespace({ namespace: ctx.config.temporal.namespace });
    const seconds = Number(ns.config?.workflowExecutionRetentionTtl?.seconds ?? NaN);
    return Number.isFinite(seconds) ? seconds / 86_400 : undefined;
  } catch {
    return undefined; // Temporal Cloud API keys may not describe namespaces; the docs say what to set.
  }
}

function retentionWarnings(days: number | undefined): string[] {
  if (days === undefined || days <= LEGAL_DEADLINE_DAYS) return [];
  return [
    `namespace history retention is ${days} days, above the ${LEGAL_DEADLINE_DAYS}-day deadline: closed forget and DAG runs keep counts only, but lower it (docs/privacy.md)`,
  ];
}

async function describeStatus(client: Client, workflowId: string): Promise<{ status: string; progress?: ForgetProgress }> {
  try {
    const handle = client.workflow.getHandle(workflowId);
    const d = await handle.describe();
    const status = d.status.name;
    if (status === 'RUNNING') {
      // No worker has taken the workflow yet (or none is polling): running, progress unknown.
      const progress = await handle.query(forgetProgressQuery).catch(() => undefined);
      return progress ? { status, progress } : { status };
    }
    if (status === 'COMPLETED') return { status, progress: (await handle.result()) as ForgetProgress };
    return { status };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { status: 'unknown' };
    throw err;
  }
}

export async function forgetStatus(ctx: OpsContext, requestId: string): Promise<ForgetStatus> {
  const workflowId = forgetWorkflowId(requestId, ctx.config.schedules.prefix);
  const clients = createGcpClients(ctx.config);
  try {
    const store = createForgetRequestStore({ firestore: clients.firestore, config: ctx.config });
    const [wf, audit, days] = await Promise.all([describeStatus(ctx.client, workflowId), store.readAudit(requestId), retentionDays(ctx)]);
    if (wf.status === 'unknown' && audit === undefined) {
      throw new OpsError(`no forget request ${requestId}: no workflow ${workflowId} and no audit record`);
    }
    return {
      requestId,
      workflowId,
      workflowStatus: wf.status,
      ...(wf.progress ? { progress: wf.progress } : {}),
      ...(audit ? { audit } : {}),
      ...(days === undefined ? {} : { historyRetentionDays: days }),
      warnings: retentionWarnings(days),
    };
  } finally {
    await closeGcpClients(clients);
  }
}

/** Stores the request and starts its workflow, or finds the earlier one for the same ids. */
export async function requestForget(
  ctx: OpsContext,
  customerIds: readonly string[],
  opts: { note: string; requestedBy: string; dryRun: boolean; now?: Date },
): Promise<ForgetRequestOutcome> {
  const now = opts.now ?? new Date();
  const base = forgetRequestId(ctx.config.privacy.salt, customerIds);
  const requestId = opts.dryRun ? `${base}-dry-${now.toISOString().replace(/[-:.]/g, '')}` : base;
  const workflowId = forgetWorkflowId(requestId, ctx.config.schedules.prefix);
  const clients = createGcpClients(ctx.config);
  try {
    const store = createForgetRequestStore({ firestore: clients.firestore, config: ctx.config });
    if (!opts.dryRun) {
      const existing = await describeStatus(ctx.client, workflowId);
      if (existing.status === 'RUNNING') return { ...(await forgetStatus(ctx, requestId)), outcome: 'running' };
      if ((await store.readAudit(requestId)) !== undefined) return { ...(await forgetStatus(ctx, requestId)), outcome: 'already-done' };
    }
    await store.createRequest(
      { request_id: requestId, note: opts.note, requested_by: opts.requestedBy, requested_at: now.toISOString(), dry_run: opts.dryRun },
      customerIds,
    );
    const args: [ForgetInput] = [{ requestId }];
    await ctx.client.workflow.start(FORGET_WORKFLOW, {
      workflowId,
      taskQueue: ctx.config.temporal.taskQueue,
      args,
      // A failed or terminated request may be asked again; a completed one has its audit record (above).
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    });
    return { ...(await forgetStatus(ctx, requestId)), outcome: 'started' };
  } finally {
    await closeGcpClients(clients);
  }
}

/** Polls the request until its workflow closes, calling `onProgress` on each change. */
export async function followForget(
  ctx: OpsContext,
  requestId: string,
  onProgress: (p: ForgetProgress) => void,
  pollMs = 1_000,
): Promise<ForgetStatus> {
  const workflowId = forgetWorkflowId(requestId, ctx.config.schedules.prefix);
  let last = '';
  for (;;) {
    const wf = await describeStatus(ctx.client, workflowId);
    if (wf.progress) {
      const line = JSON.stringify(wf.progress);
      if (line !== last) onProgress(wf.progress);
      last = line;
    }
    if (wf.status !== 'RUNNING') return forgetStatus(ctx, requestId);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export function formatForgetProgress(p: ForgetProgress): string {
  const stores = FORGET_STORES.map((s) => {
    const st = p.stores[s];
    return `${s} ${st.state === 'done' ? 'done' : `${st.pagesDone}/${st.pages}`}`;
  });
  return `${p.requestId}: ${p.stage}${p.dryRun ? ' (dry run)' : ''}; ${stores.join(', ')}`;
}

export function formatForgetStatus(s: ForgetStatus & { outcome?: ForgetRequestOutcome['outcome'] }): string {
  const p = s.progress;
  const lines = [`request ${s.requestId}  workflow ${s.workflowId}  ${s.workflowStatus}`];
  if (s.outcome === 'already-done') lines.push('already forgotten by this request: nothing changed');
  if (s.outcome === 'running') lines.push('a request for these ids is already running: following it');
  if (p) {
    lines.push(`${p.customers} customer(s) in ${p.pages} page(s), stage ${p.stage}${p.dryRun ? ', DRY RUN: nothing removed' : ''}`);
    lines.push(`${'store'.padEnd(18)} ${'state'.padEnd(8)} ${'found'.padStart(8)} ${p.dryRun ? '' : 'removed'.padStart(8)}  detail`);
    for (const name of FORGET_STORES) {
      const st = p.stores[name];
      const detail = Object.entries(st.detail)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      lines.push(
        `${name.padEnd(18)} ${st.state.padEnd(8)} ${String(st.found).padStart(8)} ${p.dryRun ? '' : String(st.removed).padStart(8)}  ${detail}`,
      );
    }
  }
  const verification = p?.verification ?? s.audit?.verification;
  if (verification) {
    const found = Object.entries(verification).filter(([, n]) => n > 0);
    lines.push(
      found.length === 0
        ? 'verification: every store searched again, nothing of these ids found'
        : `verification: ${p?.dryRun || s.audit?.dry_run ? 'found now' : 'STILL FOUND'} ${found.map(([k, n]) => `${k}=${n}`).join(', ')}`,
    );
  }
  if (s.audit)
    lines.push(
      `audit record ${s.audit.request_id}: ${s.audit.customers} hashed id(s), by ${s.audit.requested_by} at ${s.audit.completed_at}`,
    );
  for (const w of s.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n');
}

/** Registers `forget` on the ops program (schedules/ops.ts adds --json to every command). */
export function addForgetCommands(program: Command, getCtx: () => Promise<OpsContext>): void {
  program
    .command('forget')
    .description(
      'Forget customers everywhere (GDPR art. 17, CCPA): suppress them, remove them from the lake, the warehouse, Firestore and Temporal, notify webhook subscribers, verify and audit. One workflow forget/<request id> per request.',
    )
    .argument('[ids...]', 'customer ids')
    .option('--file <path>', 'more ids, one per line (# comments and blank lines ignored)')
    .option('--note <text>', 'why (ticket, who asked); stored in the audit record, so no personal data')
    .option('--dry-run', 'count what would be removed in each store, remove nothing (after a request: the verification on demand)')
    .option('--status <requestId>', 'report a request: per store found and removed, the verification, the audit record')
    .option('--by <name>', 'who requests it (default: the OS user)')
    .option('--no-wait', 'return once started, without following progress')
    .addHelpText('after', '\nWith --json, progress lines go to stderr and stdout holds only the final JSON. See docs/privacy.md.')
    .action(async (args: string[], o: ForgetOptions) => {
      const ctx = await getCtx();
      const print = (s: ForgetStatus) => console.log(o.json ? toJson(s) : formatForgetStatus(s));
      if (o.status !== undefined) {
        if (args.length > 0 || o.file) throw new OpsError('forget --status takes a request id only, not customer ids');
        print(await forgetStatus(ctx, o.status));
        return;
      }
      if (!o.note) throw new OpsError('forget: --note "<why: ticket, request>" is required (it goes into the audit record)');
      const ids = await readIds(args, o.file);
      const started = await requestForget(ctx, ids, { note: o.note, requestedBy: o.by ?? userInfo().username, dryRun: o.dryRun ?? false });
      const progressOut = o.json ? console.error : console.log;
      progressOut(`${started.outcome}: ${started.workflowId} (${ids.length} customer(s))`);
      if (!o.wait || started.outcome === 'already-done') {
        print(started);
        return;
      }
      const done = await followForget(ctx, started.requestId, (p) => progressOut(formatForgetProgress(p)));
      print({ ...done, ...(started.outcome === 'running' ? { outcome: 'running' } : {}) } as ForgetStatus);
      if (done.workflowStatus !== 'COMPLETED') process.exitCode = 1;
    });
}
