/**
 * npm run segment -- --now : run the nightly_segmentation DAG now and print the chosen k, the
 * segment table and the stability figures. Uses a running worker on TEMPORAL_TASK_QUEUE, or
 * starts one in this process when none polls the queue.
 * npm run segment -- --compare : K-Means, hierarchical and DBSCAN on one sample of
 * marts.customer_features (scripts/lib/segment-compare.ts); needs BigQuery only.
 */
import { Command } from 'commander';
import { closeGcpClients, createGcpClients } from '../stores/clients.js';
import { readSegmentationRun } from '../stores/model-registry.js';
import { loadSegflowConfigOrExit } from '../workers/segmentation-config.js';
import { createLogger } from '../core/logger.js';
import { workflowUiUrl } from '../core/temporal-connection.js';
import { NIGHTLY_SEGMENTATION_DAG } from '../core/dag-ids.js';
import { modelVersionFor } from '../core/segmentation/model.js';
import { MS_PER_UNIT, parseInstant } from '../core/time.js';
import { dagRunWorkflowId, formatInstant } from '../workflows/dag-messages.js';
import { createTemporalClient } from '../workers/client.js';
import { printTable } from './lib/table.js';
import { COMPARE_SAMPLE_DEFAULT, compareSample, comparisonJson, printComparison, readCompareSample } from './lib/segment-compare.js';
import { startWorker } from '../workers/worker.js';

const program = new Command('segment')
  .description(
    'Run the nightly_segmentation DAG (extract -> choose_k -> train -> label -> register -> assign_all -> stability -> promote) and print the result.',
  )
  .option('--now', 'run for the day ending now (interval [now - 1 day, now), to the second)')
  .option('--interval-end <instant>', 'run for the day ending at this RFC 3339 instant instead (e.g. 2026-11-26T02:00:00Z)')
  .option(
    '--compare',
    'instead of a run: compare K-Means, hierarchical and DBSCAN on a sample of marts.customer_features (clusters, sizes, noise, silhouette, Davies-Bouldin, Calinski-Harabasz, bootstrap stability) and recommend one',
  )
  .option('--sample <n>', `--compare: customers in the sample (default ${COMPARE_SAMPLE_DEFAULT})`)
  .option('--json', '--compare: print the comparison as JSON')
  .addHelpText(
    'after',
    '\nSettings: SEGFLOW_SEGMENT_* environment variables (see docs/segmentation.md). The model version is v<interval end>, e.g. v20261126T020000Z.',
  )
  .showHelpAfterError();
program.parse();
const opts = program.opts<{ now?: boolean; intervalEnd?: string; compare?: boolean; sample?: string; json?: boolean }>();
if (!opts.now && !opts.intervalEnd && !opts.compare) {
  program.help({ error: true });
}

const config = loadSegflowConfigOrExit();
if (opts.compare) {
  const size = opts.sample === undefined ? COMPARE_SAMPLE_DEFAULT : Number(opts.sample);
  if (!Number.isInteger(size) || size < 10) {
    console.error(`--sample: expected a whole number of customers, at least 10, found ${JSON.stringify(opts.sample)}`);
    process.exit(2);
  }
  const clients = createGcpClients(config);
  try {
    const { rows, population } = await readCompareSample(clients.bigquery, config, size);
    if (rows.length < 10) {
      console.error(`${config.warehouse.marts}.customer_features has ${rows.length} customers; the comparison needs at least 10`);
      process.exit(1);
    }
    const cmp = compareSample(rows, config);
    if (opts.json) console.log(JSON.stringify(comparisonJson(cmp, population), null, 2));
    else printComparison(cmp, population);
  } finally {
    await closeGcpClients(clients);
  }
  process.exit(0);
}
const logger = createLogger({ level: config.log.level, name: 'segment' });
const endMs = opts.intervalEnd ? parseInstant(opts.intervalEnd) : Math.floor(Date.now() / 1000) * 1000;
if (Number.isNaN(endMs)) {
  console.error(`--interval-end: expected an RFC 3339 instant with an offset, found ${JSON.stringify(opts.intervalEnd)}`);
  process.exit(2);
}
const interval = { start: formatInstant(endMs - MS_PER_UNIT.d), end: formatInstant(endMs) };
const version = modelVersionFor(interval.end);

const client = await createTemporalClient(config);
const queue = await client.workflowService.describeTaskQueue({
  namespace: config.temporal.namespace,
  taskQueue: { name: config.temporal.taskQueue },
  taskQueueType: 2, // activity pollers: the DAG's tasks need them
});
const worker = (queue.pollers ?? []).length === 0 ? await startWorker(config, logger) : undefined;
if (worker) console.log(`no worker polls ${config.temporal.taskQueue}; started one in this process`);

const workflowId = `${dagRunWorkflowId(NIGHTLY_SEGMENTATION_DAG, interval.start)}/manual-${Date.now()}`;
const handle = await client.workflow.start('runDag', {
  taskQueue: config.temporal.taskQueue,
  workflowId,
  args: [{ dagId: NIGHTLY_SEGMENTATION_DAG, interval, uiBaseUrl: config.temporal.uiUrl }],
});
console.log(`started ${workflowId} for ${interval.start}..${interval.end} (model ${version})`);
console.log(`  ${workflowUiUrl(config.temporal.uiUrl, config.temporal.namespace, workflowId, handle.firstExecutionRunId)}`);
let failed = false;
try {
  await handle.result();
} catch (err) {
  failed = true;
  console.error(`the run failed: ${err instanceof Error ? err.message : String(err)}`);
}

const clients = createGcpClients(config);
const run = await readSegmentationRun({ ...clients, config }, version);
if (run.model) {
  const sel = run.model.k_selection;
  const rule = sel.rule
    ? `; smallest k within ${sel.rule.tolerance} of the best silhouette, stability floor ${sel.rule.min_stability} over ${sel.rule.resamples} resamples of ${sel.rule.stability_rows} rows`
    : '';
  console.log(`\nchosen k = ${sel.chosen_k} (by ${sel.chosen_by}; elbow at ${sel.elbow_k ?? 'none'}${rule})`);
  printTable(
    ['k', 'inertia', 'silhouette', 'stability', 'smallest', 'chosen', 'refused'],
    sel.candidates.map((c) => [
      c.k,
      c.inertia.toFixed(2),
      c.silhouette.toFixed(3),
      c.stability === null || c.stability === undefined ? '-' : c.stability.toFixed(3),
      `${(c.min_share * 100).toFixed(1)}%`,
      c.k === sel.chosen_k ? 'yes' : '',
      c.rejected_reason ?? '',
    ]),
    { indent: 2, align: ['right', 'right', 'right', 'right', 'right'] },
  );
  const coh = run.model.cohesion;
  if (coh) {
    const fmt = (x: number | null, digits: number) => (x === null ? '-' : x.toFixed(digits));
    console.log(
      `\ncohesion and separation: silhouette ${coh.silhouette.toFixed(3)}, Davies-Bouldin ${fmt(coh.davies_bouldin, 3)} (lower is better), Calinski-Harabasz ${fmt(coh.calinski_harabasz, 1)} (higher is better)`,
    );
    printTable(
      ['segment', 'silhouette', 'mean distance', 'nearest other', 'distance to it'],
      coh.segments.map((g) => [
        run.model!.segments[g.index]?.label ?? g.index,
        fmt(g.silhouette, 3),
        g.mean_distance.toFixed(3),
        g.nearest_index === null ? '-' : (run.model!.segments[g.nearest_index]?.label ?? g.nearest_index),
        fmt(g.nearest_centroid_distance, 3),
      ]),
      { indent: 2, align: ['left', 'right', 'right', 'left', 'right'] },
    );
  }
  console.log('\nsegments (every customer, assigned in BigQuery):');
  printTable(
    ['id', 'label', 'customers', 'share'],
    run.sizes.map((s) => [s.segment_id, s.segment_label, s.customers, `${(s.share * 100).toFixed(1)}%`]),
    { indent: 2, align: ['right', 'left', 'right', 'right'] },
  );
  const parents = run.model?.hierarchy?.parents;
  if (parents) {
    const labelOf = new Map(run.model!.segments.map((g) => [g.id, g.label]));
    console.log('\nparent segments (Ward over the segments, weighted by size):');
    printTable(
      ['id', 'label', 'segments', 'share'],
      parents.map((p) => [p.id, p.label, p.members.map((id) => labelOf.get(id) ?? id).join(', '), `${(p.share * 100).toFixed(1)}%`]),
      { indent: 2, align: ['right', 'left', 'left', 'right'] },
    );
  }
}
if (run.stability) {
  const st = run.stability;
  console.log(
    `\nstability against ${st.previousVersion ?? '(no current model)'}: ${st.decisionName}${st.alerted ? ' (alert raised)' : ''}`,
  );
  if (st.figures) {
    const f = st.figures;
    console.log(
      `  changed share ${(f.changed_share * 100).toFixed(2)}%  ARI ${f.adjusted_rand_index.toFixed(4)}  max centroid drift ${f.max_centroid_drift.toFixed(4)}  max size shift ${(f.max_size_shift * 100).toFixed(2)} pts`,
    );
  }
  for (const b of st.breaches) console.log(`  breach: ${b.message}`);
}
console.log(`\ncurrent model: ${run.current ? `${run.current.version} (${run.current.uri})` : 'none'}`);

await closeGcpClients(clients);
await worker?.shutdown();
await client.connection.close();
process.exit(failed ? 1 : 0);
