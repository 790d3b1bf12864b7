/**
 * npm run ops -- <command>: the operator's CLI over schedules and DAG runs.
 *
 *   status                         every DAG: schedule, paused, last runs, next run
 *   backfill <dag> --from --to     every interval in [from, to) through the schedule backfill API
 *   pause|resume <dag> --note      pause or resume a DAG's schedule
 *   trigger <dag> [--interval]     start one run now (`<dag>/<interval start>`)
 *   runs <dag>                     recent runs (visibility)
 *   tasks <workflowId>             task states of one run
 *   rerun-failed <dag> --interval  run a failed interval again, skipping what succeeded
 *   rerun-stale <dag> [--interval] rerun intervals whose input landed again (ops-rerun-stale.ts)
 *   models list|show|diff|promote|rollback   the model registry (ops-models.ts)
 *   quarantine summary|show|replay inspect and replay the quarantine (ops-quarantine.ts)
 *   forget <ids...> --note         forget customers everywhere (ops-forget.ts, docs/privacy.md)
 *
 * Every command takes --json: the data as JSON on stdout, nothing else there. The operations are
 * in ops-lib.ts, the text in ops-format.ts. Exit status 2 for a request to correct (OpsError).
 */
import type { Client } from '@temporalio/client';
import { Command, Option } from 'commander';
import { fileURLToPath } from 'node:url';
import { loadConfigOrExit } from '../core/config.js';
import { wholeNumber } from '../scripts/lib/cli.js';
import { createTemporalClient } from '../workers/client.js';
import { createStorage } from '../stores/clients.js';
import { registerQuarantineCommands } from './ops-quarantine.js';
import type { OverlapPolicyName } from './definitions.js';
import { registerModelCommands } from './ops-models.js';
import { addForgetCommands } from './ops-forget.js';
import { addRerunStaleCommand } from './ops-rerun-stale.js';
import {
  formatBackfillEnd,
  formatBackfillProgress,
  formatBackfillRequest,
  formatPaused,
  formatRerun,
  formatRunList,
  formatStatus,
  formatTaskStates,
  formatTriggered,
  toJson,
} from './ops-format.js';
import {
  BACKFILL_CONFIRM_ABOVE,
  OpsError,
  dagStatuses,
  followBackfill,
  listRuns,
  requestBackfill,
  rerunFailed,
  setPaused,
  taskStates,
  trigger,
  type OpsContext,
} from './ops-lib.js';

interface JsonOption {
  json?: boolean;
}

/** Prints `data` as JSON with --json, else as `text(data)`. */
function report<T>(o: JsonOption, data: T, text: (data: T) => string): void {
  console.log(o.json ? toJson(data) : text(data));
}

export function buildProgram(getCtx: () => Promise<OpsContext>): Command {
  const program = new Command('ops')
    .description('Operate segflow: schedules, backfills and DAG runs on the configured Temporal namespace.')
    .showHelpAfterError();

  const withCtx =
    <A extends unknown[]>(fn: (ctx: OpsContext, ...args: A) => Promise<void>) =>
    async (...args: A) =>
      fn(await getCtx(), ...args);

  program
    .command('status')
    .description(
      'Each DAG: its schedule, paused or not, the last runs (interval, state, duration) and the next run; for DAGs triggered by data, their stale intervals.',
    )
    .argument('[dags...]', 'DAG ids (default: every scheduled DAG)')
    .option('--runs <n>', 'runs to show per DAG', wholeNumber(1), 5)
    .option('--all', 'every registered DAG, scheduled or not (examples, benchmarks)')
    .action(
      withCtx(async (ctx, dags: string[], o: JsonOption & { runs: number; all?: boolean }) => {
        report(
          o,
          await dagStatuses(ctx, { ...(dags.length > 0 ? { dagIds: dags } : {}), runs: o.runs, all: o.all ?? false }),
          formatStatus,
        );
      }),
    );

  program
    .command('backfill')
    .description('Run every interval in [--from, --to) through the schedule backfill API, each with its own data interval; shows progress.')
    .argument('<dag>', 'DAG id, e.g. hourly_pipeline')
    .option('--from <start>', 'first interval start, RFC 3339 (e.g. 2026-11-26T06:00:00Z)')
    .option('--to <end>', 'end of the range, exclusive (e.g. 2026-11-26T09:00:00Z)')
    .addOption(
      new Option('--overlap <policy>', 'how backfilled runs overlap each other')
        .choices(['BUFFER_ALL', 'ALLOW_ALL', 'SKIP', 'BUFFER_ONE'])
        .default('BUFFER_ALL'),
    )
    .option('--yes', `confirm a backfill of more than ${BACKFILL_CONFIRM_ABOVE} intervals`)
    .option('--no-wait', 'return once requested, without following progress')
    .option('--timeout <minutes>', 'stop following progress after this long (the backfill goes on)', wholeNumber(1))
    .addHelpText('after', '\nWith --json, progress lines go to stderr and stdout holds only the final JSON.')
    .action(
      withCtx(
        async (
          ctx,
          dag: string,
          o: JsonOption & { from?: string; to?: string; overlap: OverlapPolicyName; yes?: boolean; wait: boolean; timeout?: number },
        ) => {
          const request = await requestBackfill(ctx, dag, {
            ...(o.from === undefined ? {} : { from: o.from }),
            ...(o.to === undefined ? {} : { to: o.to }),
            overlap: o.overlap,
            yes: o.yes ?? false,
          });
          const progressOut = o.json ? console.error : console.log;
          progressOut(formatBackfillRequest(request));
          if (!o.wait) {
            if (o.json) console.log(toJson(request));
            return;
          }
          let lastLine = '';
          const followed = await followBackfill(ctx, request, {
            ...(o.timeout === undefined ? {} : { timeoutMs: o.timeout * 60_000 }),
            onProgress: (progress) => {
              const line = formatBackfillProgress(progress);
              if (line !== lastLine) progressOut(line);
              lastLine = line;
            },
          });
          report(o, { ...request, ...followed }, formatBackfillEnd);
        },
      ),
    );

  for (const [name, paused] of [
    ['pause', true],
    ['resume', false],
  ] as const) {
    program
      .command(name)
      .description(`${paused ? 'Pause' : 'Resume'} a DAG's schedule; the note shows in the UI and in \`ops status\`.`)
      .argument('<dag>', 'DAG id')
      .option('--note <text>', 'why (who, ticket)')
      .action(
        withCtx(async (ctx, dag: string, o: JsonOption & { note?: string }) => {
          report(o, await setPaused(ctx, dag, paused, o.note), formatPaused);
        }),
      );
  }

  program
    .command('trigger')
    .description('Start one run of a DAG now, with workflow id <dag>/<interval start>.')
    .argument('<dag>', 'DAG id')
    .option('--interval <start>', 'interval start, RFC 3339 (default: the last complete interval)')
    .action(
      withCtx(async (ctx, dag: string, o: JsonOption & { interval?: string }) => {
        report(o, await trigger(ctx, dag, o.interval === undefined ? {} : { interval: o.interval }), formatTriggered);
      }),
    );

  program
    .command('runs')
    .description('Recent runs of a DAG, newest first (from visibility: DagId search attribute).')
    .argument('<dag>', 'DAG id')
    .option('--limit <n>', 'how many', wholeNumber(1), 20)
    .addOption(
      new Option('--status <status>', 'only runs in this state').choices([
        'Running',
        'Completed',
        'Failed',
        'Canceled',
        'Terminated',
        'TimedOut',
      ]),
    )
    .action(
      withCtx(async (ctx, dag: string, o: JsonOption & { limit: number; status?: string }) => {
        const runs = await listRuns(ctx, dag, { limit: o.limit, ...(o.status ? { extra: [`ExecutionStatus = '${o.status}'`] } : {}) });
        report(o, runs, (r) => formatRunList(dag, r));
      }),
    );

  program
    .command('tasks')
    .description("Task states of one run (Airflow's task instances): live while it runs, from its result once closed.")
    .argument('<workflowId>', 'e.g. hourly_pipeline/2026-11-26T09:00:00Z')
    .action(
      withCtx(async (ctx, workflowId: string, o: JsonOption) => {
        report(o, await taskStates(ctx, workflowId), formatTaskStates);
      }),
    );

  program
    .command('rerun-failed')
    .description(
      'Run a failed interval again as a new run of the same workflow id, skipping tasks that succeeded and are not downstream of a failure.',
    )
    .argument('<dag>', 'DAG id')
    .requiredOption('--interval <start>', 'interval start of the failed run, RFC 3339')
    .action(
      withCtx(async (ctx, dag: string, o: JsonOption & { interval: string }) => {
        report(o, await rerunFailed(ctx, dag, o.interval), formatRerun);
      }),
    );

  addForgetCommands(program, getCtx);
  addRerunStaleCommand(program, getCtx);

  for (const c of program.commands) c.option('--json', 'print the result as JSON on stdout, and nothing else there');
  registerModelCommands(program);
  registerQuarantineCommands(program, async () => {
    const ctx = await getCtx();
    return { ...ctx, storage: createStorage(ctx.config) };
  });
  return program;
}

async function main(): Promise<void> {
  let client: Client | undefined;
  const program = buildProgram(async () => {
    const config = loadConfigOrExit();
    client = await createTemporalClient(config);
    return { client, config };
  });
  try {
    await program.parseAsync();
  } finally {
    await client?.connection.close();
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(`ops: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(err instanceof OpsError ? 2 : 1);
  });
}
