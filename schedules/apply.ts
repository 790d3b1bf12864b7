/**
 * npm run schedules:apply — make the Temporal server's schedules match schedules/definitions.ts:
 * create the missing, update the changed (in place, keeping a pause an operator set), delete the
 * segflow-created ones the code no longer has, and print what was done. Idempotent.
 */
import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { loadConfigOrExit, type Config } from '../core/config.js';
import { formatTable } from '../scripts/lib/table.js';
import { createTemporalClient } from '../workers/client.js';
import {
  SEGFLOW_SCHEDULE_MEMO,
  SEGFLOW_SPEC_HASH_MEMO,
  ensureIngestion,
  partitionByRegistry,
  scheduleAction,
  scheduleDefinitions,
  scheduleOptions,
  schedulePolicies,
  scheduleSpec,
  specHash,
  type DagScheduleDefinition,
  type SegflowScheduleMemo,
} from './definitions.js';

export type ApplyChangeKind = 'created' | 'updated' | 'deleted' | 'unchanged' | 'skipped';

export interface ApplyChange {
  readonly kind: ApplyChangeKind;
  readonly scheduleId: string;
  readonly detail: string;
}

export interface ApplyResult {
  readonly changes: readonly ApplyChange[];
  /** True when nothing was created, updated or deleted. */
  readonly noChanges: boolean;
}

export interface ApplyOptions {
  /** Only schedules created with this prefix are ever deleted (other deployments, tests). */
  readonly prefix: string;
  /** Definitions whose DAG this build does not register: neither created nor deleted. */
  readonly unknownDag?: readonly DagScheduleDefinition[];
  readonly dryRun?: boolean;
}

export async function applySchedules(
  client: Client,
  definitions: readonly DagScheduleDefinition[],
  opts: ApplyOptions,
): Promise<ApplyResult> {
  const changes: ApplyChange[] = [];
  const wanted = new Set(definitions.map((d) => d.scheduleId));
  for (const d of opts.unknownDag ?? []) {
    wanted.add(d.scheduleId);
    changes.push({
      kind: 'skipped',
      scheduleId: d.scheduleId,
      detail: `DAG "${d.dagId}" is not registered in dags/index.ts; left as it is`,
    });
  }

  for (const def of definitions) {
    const hash = specHash(def);
    const handle = client.schedule.getHandle(def.scheduleId);
    let current: Awaited<ReturnType<typeof handle.describe>> | undefined;
    try {
      current = await handle.describe();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
    if (current === undefined) {
      if (!opts.dryRun) await client.schedule.create(scheduleOptions(def));
      changes.push({
        kind: 'created',
        scheduleId: def.scheduleId,
        detail: `${def.cron} (${def.timezone}), overlap ${def.overlap}, catch-up ${def.catchupWindow}`,
      });
      continue;
    }
    const owner = current.memo?.[SEGFLOW_SCHEDULE_MEMO] as SegflowScheduleMemo | undefined;
    if (owner === undefined) {
      throw new Error(
        `Schedule "${def.scheduleId}" exists but was not created by segflow (no ${SEGFLOW_SCHEDULE_MEMO} memo). ` +
          'Delete or rename it (temporal schedule delete --schedule-id ...), or set SEGFLOW_SCHEDULE_PREFIX, then apply again.',
      );
    }
    const currentHash = current.action.type === 'startWorkflow' ? current.action.memo?.[SEGFLOW_SPEC_HASH_MEMO] : undefined;
    if (currentHash === hash) {
      changes.push({ kind: 'unchanged', scheduleId: def.scheduleId, detail: def.cron });
      continue;
    }
    if (!opts.dryRun) {
      await handle.update((previous) => ({
        ...previous,
        spec: scheduleSpec(def),
        action: scheduleAction(def),
        policies: schedulePolicies(def),
        // A pause (and its note) is an operator's decision: apply keeps it.
        state: previous.state,
      }));
    }
    changes.push({
      kind: 'updated',
      scheduleId: def.scheduleId,
      detail: `now ${def.cron} (${def.timezone}), overlap ${def.overlap}, catch-up ${def.catchupWindow}`,
    });
  }

  for await (const summary of client.schedule.list()) {
    const owner = summary.memo?.[SEGFLOW_SCHEDULE_MEMO] as SegflowScheduleMemo | undefined;
    if (owner === undefined || owner.prefix !== opts.prefix || wanted.has(summary.scheduleId)) continue;
    try {
      if (!opts.dryRun) await client.schedule.getHandle(summary.scheduleId).delete();
      changes.push({ kind: 'deleted', scheduleId: summary.scheduleId, detail: 'no longer defined in schedules/definitions.ts' });
    } catch (err) {
      // Listing is eventually consistent: it can still show a schedule deleted a moment ago.
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
  }
  return { changes, noChanges: changes.every((c) => c.kind === 'unchanged' || c.kind === 'skipped') };
}

/** The schedules of this configuration, applied. Used by the CLI and `npm start`. */
export async function applyConfiguredSchedules(client: Client, config: Config, opts: { dryRun?: boolean } = {}): Promise<ApplyResult> {
  const { runnable, unknownDag } = partitionByRegistry(scheduleDefinitions(config));
  return applySchedules(client, runnable, { prefix: config.schedules.prefix, unknownDag, dryRun: opts.dryRun ?? false });
}

export function formatApplyResult(result: ApplyResult, dryRun = false): string {
  const verb: Record<ApplyChangeKind, string> = {
    created: dryRun ? 'would create' : 'created',
    updated: dryRun ? 'would update' : 'updated',
    deleted: dryRun ? 'would delete' : 'deleted',
    unchanged: 'unchanged',
    skipped: 'skipped',
  };
  const summary = result.noChanges
    ? 'no changes: the server matches schedules/definitions.ts'
    : `${result.changes.filter((c) => !['unchanged', 'skipped'].includes(c.kind)).length} change(s)`;
  if (result.changes.length === 0) return summary;
  return `${formatTable(
    [],
    result.changes.map((c) => [verb[c.kind], c.scheduleId, c.detail]),
    { indent: 2 },
  )}\n${summary}`;
}

async function main(): Promise<void> {
  const program = new Command('schedules:apply')
    .description(
      'Make the Temporal schedules match schedules/definitions.ts: create missing, update changed, delete removed (only schedules segflow created with SEGFLOW_SCHEDULE_PREFIX).',
    )
    .option('--dry-run', 'print what would change, change nothing')
    .option('--ensure-ingestion', 'also start the continuous ingestion workflow if it is not running')
    .option('--json', 'print the changes (and the ingestion workflow) as JSON on stdout, and nothing else there')
    .showHelpAfterError();
  program.parse();
  const opts = program.opts<{ dryRun?: boolean; ensureIngestion?: boolean; json?: boolean }>();
  const dryRun = opts.dryRun ?? false;
  const config = loadConfigOrExit();
  const client = await createTemporalClient(config);
  try {
    const result = await applyConfiguredSchedules(client, config, { dryRun });
    const ingestion = opts.ensureIngestion && !dryRun ? await ensureIngestion(client, config) : undefined;
    if (opts.json) {
      console.log(JSON.stringify({ ...result, dryRun, ...(ingestion === undefined ? {} : { ingestion }) }, null, 2));
      return;
    }
    console.log(formatApplyResult(result, dryRun));
    if (ingestion !== undefined) console.log(`  ingestion  ${ingestion.workflowId} ${ingestion.started ? 'started' : 'already running'}`);
  } finally {
    await client.connection.close();
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(`schedules:apply: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
