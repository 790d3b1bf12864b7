/**
 * `npm run ops -- models ...`: the model registry for an operator.
 *
 *   list                               registered versions, the current one marked
 *   show <version>                     one version: segments and sizes, stability, promotions
 *   diff <a> <b>                       promotion dry-run: customers changing segment, matrix, webhooks
 *   promote <version> --note "..."     make a version current (releases a held one), recorded
 *   rollback --note "..."              back to the version current before this one, recorded
 *
 * Every subcommand takes --json. The operations are in ops-models-lib.ts.
 */
import type { Command } from 'commander';
import { loadConfigOrExit } from '../core/config.js';
import { formatTable } from '../scripts/lib/table.js';
import { wholeNumber } from '../scripts/lib/cli.js';
import { closeGcpClients, createGcpClients } from '../stores/clients.js';
import { toJson } from './ops-format.js';
import {
  diffModels,
  listModels,
  operatorName,
  promoteModel,
  rollbackModel,
  showModel,
  type ModelDetail,
  type ModelDiff,
  type ModelList,
  type ModelsContext,
  type PromotionResult,
} from './ops-models-lib.js';

const pct = (share: number | null) => (share === null ? '-' : `${(share * 100).toFixed(1)}%`);
const fixed = (n: number | null, digits = 3) => (n === null ? '-' : n.toFixed(digits));

export function formatModelList(list: ModelList): string {
  if (list.models.length === 0) return 'no registered models yet (the nightly_segmentation DAG registers one per night)';
  return formatTable(
    ['', 'VERSION', 'K', 'SILHOUETTE', 'DECISION', 'CREATED', 'PROMOTED BY', 'NOTE'],
    list.models.map((m) => [
      m.is_current ? '*' : '',
      m.version,
      m.k,
      fixed(m.silhouette),
      m.decision ?? '-',
      m.created_at,
      m.promoted_by ?? '-',
      m.promotion_note ?? '',
    ]),
  );
}

export function formatModelDetail(d: ModelDetail): string {
  const lines = [
    `${d.version}${d.is_current ? ' (current)' : ''}: k=${d.k}, silhouette ${fixed(d.silhouette)}, created ${d.created_at}`,
    `features: ${d.features.join(', ')}`,
    d.stability === null
      ? 'stability: not measured'
      : `stability against ${d.stability.previous_version ?? 'nothing'}: ${d.stability.decision}, changed ${pct(d.stability.changed_share)}, ARI ${fixed(d.stability.ari)}`,
    '',
    `segments (sizes from ${d.size_source}):`,
    formatTable(
      ['ID', 'LABEL', 'CUSTOMERS', 'SHARE', 'TRAITS'],
      d.segments.map((s) => [s.segment_id, s.segment_label, s.customers, pct(s.share), s.traits.join(', ')]),
      { indent: 2, align: ['right', 'left', 'right', 'right'] },
    ),
  ];
  if (d.promotions.length > 0) {
    lines.push(
      '',
      'promotions:',
      formatTable(
        ['WHEN', 'ACTION', 'BY', 'REPLACED', 'NOTE'],
        d.promotions.map((p) => [p.promoted_at, p.action, p.promoted_by, p.previous_version ?? '-', p.note ?? '']),
        { indent: 2 },
      ),
    );
  }
  return lines.join('\n');
}

export function formatModelDiff(d: ModelDiff): string {
  const lines = [
    `${d.from} -> ${d.to}: ${d.changed} of ${d.compared} customers change segment (${pct(d.changed_share)})`,
    `only in ${d.from}: ${d.only_in_from}; only in ${d.to}: ${d.only_in_to}`,
    '',
    'transitions (customers, from -> to):',
    formatTable(
      ['FROM', 'TO', 'CUSTOMERS'],
      d.matrix.map((c) => [
        `${c.from_id} ${c.from_label}`,
        `${c.to_id} ${c.to_label}${c.from_id === c.to_id ? ' (same)' : ''}`,
        c.customers,
      ]),
      { indent: 2, align: ['left', 'left', 'right'] },
    ),
    '',
  ];
  if (d.deliveries.length === 0) lines.push('webhooks: no subscribers configured (SEGFLOW_WEBHOOKS)');
  else {
    lines.push(
      'webhook deliveries a promotion would cause (segment changes, by subscriber filter):',
      formatTable(
        ['SUBSCRIBER', 'DELIVERIES'],
        d.deliveries.map((x) => [x.subscriber, x.deliveries]),
        { indent: 2, align: ['left', 'right'] },
      ),
    );
  }
  return lines.join('\n');
}

export function formatPromotion(r: PromotionResult): string {
  if (!r.changed) return `${r.model_version} is current already (${r.action} by ${r.promoted_by} at ${r.promoted_at}); nothing changed`;
  const verb = r.action === 'rollback' ? 'rolled back to' : 'promoted';
  return (
    `${verb} ${r.model_version} (was ${r.previous_version ?? 'none'})${r.released_hold ? ', releasing the held model' : ''}; ` +
    `recorded as ${r.promoted_by} at ${r.promoted_at}: ${r.note ?? ''}`
  );
}

interface JsonOption {
  json?: boolean;
}

/** Adds `models` and its subcommands to the ops program. */
export function registerModelCommands(program: Command): void {
  const withModels =
    <A extends unknown[]>(fn: (ctx: ModelsContext, ...args: A) => Promise<void>) =>
    async (...args: A) => {
      const config = loadConfigOrExit();
      const clients = createGcpClients(config);
      try {
        await fn({ bigquery: clients.bigquery, storage: clients.storage, config }, ...args);
      } finally {
        await closeGcpClients(clients);
      }
    };
  const print = <T>(o: JsonOption, data: T, text: (data: T) => string) => console.log(o.json ? toJson(data) : text(data));

  const models = program
    .command('models')
    .description('The segmentation model registry: list, show, diff, promote, roll back (current.json and marts.segment_promotions).');

  models
    .command('list')
    .description('Registered model versions, newest first; * marks the current one (current.json).')
    .option('--limit <n>', 'how many', wholeNumber(1), 20)
    .action(
      withModels(async (ctx, o: JsonOption & { limit: number }) => {
        print(o, await listModels(ctx, { limit: o.limit }), formatModelList);
      }),
    );

  models
    .command('show')
    .description('One version: k, silhouette, features, each segment with its customers, its stability figures and promotion history.')
    .argument('<version>', 'e.g. v20261126T000000Z')
    .action(
      withModels(async (ctx, version: string, o: JsonOption) => {
        print(o, await showModel(ctx, version), formatModelDetail);
      }),
    );

  models
    .command('diff')
    .description(
      'Promotion dry-run from <a> to <b>: customers that would change segment (from marts.customer_segments), the transition matrix, and the webhook deliveries each subscriber would receive.',
    )
    .argument('<a>', 'the version serving now (e.g. the current one)')
    .argument('<b>', 'the version to promote')
    .action(
      withModels(async (ctx, a: string, b: string, o: JsonOption) => {
        print(o, await diffModels(ctx, a, b), formatModelDiff);
      }),
    );

  models
    .command('promote')
    .description(
      'Make <version> current in one write of current.json and record it (who, when, why); releases a model the nightly run held (policy hold). ' +
        'The API serves it at once, the real-time path within SEGFLOW_MODEL_POINTER_TTL_MS.',
    )
    .argument('<version>', 'a registered version (ops models list)')
    .requiredOption('--note <text>', 'why (ticket, reason); recorded')
    .option('--by <name>', 'who (default SEGFLOW_OPERATOR, else user@host)')
    .action(
      withModels(async (ctx, version: string, o: JsonOption & { note: string; by?: string }) => {
        print(o, await promoteModel(ctx, version, { note: o.note, by: operatorName(o.by) }), formatPromotion);
      }),
    );

  models
    .command('rollback')
    .description(
      'Make the version current before this one current again (one write of current.json), recorded; a second rollback undoes the first.',
    )
    .requiredOption('--note <text>', 'why (ticket, reason); recorded')
    .option('--by <name>', 'who (default SEGFLOW_OPERATOR, else user@host)')
    .action(
      withModels(async (ctx, o: JsonOption & { note: string; by?: string }) => {
        print(o, await rollbackModel(ctx, { note: o.note, by: operatorName(o.by) }), formatPromotion);
      }),
    );

  for (const c of models.commands) c.option('--json', 'print the result as JSON on stdout, and nothing else there');
}
