import type { DagTaskInput } from '../../core/dag-task.js';
import { defaultRestartRows, deriveSeed, prepareMatrix, trainKMeans } from '../../core/segmentation/index.js';
import { ExtractSchema, KStepSchema, TrainedSchema, type Trained } from '../../stores/model-registry.js';
import { extractRows, trainedRecord, type SegmentationContext } from './context.js';

/**
 * Trains the chosen k with more k-means++ restarts; the best inertia (including choose_k's fit) wins.
 * A hierarchical k_selection step already holds its model (the cut tree's means): it is kept as is.
 */
export async function train(ctx: SegmentationContext, input: DagTaskInput) {
  const { settings } = ctx;
  const version = ctx.versionOf(input);
  const log = ctx.taskLog(input, version);
  const done = await ctx.readStep(version, 'trained', TrainedSchema);
  if (done) return { version, k: done.k, inertia: done.inertia, reused: true };
  const extract = await ctx.requireStep(version, 'extract', ExtractSchema, 'extract');
  const kstep = await ctx.requireStep(version, 'k_selection', KStepSchema, 'choose_k');
  if (kstep.algorithm === 'hierarchical') {
    await ctx.writeStep(version, 'trained', kstep.fit);
    log.info({ algorithm: kstep.algorithm, k: kstep.fit.k, inertia: kstep.fit.inertia }, 'model trained (the Ward cut of choose_k)');
    return { version, k: kstep.fit.k, inertia: kstep.fit.inertia, reused: false };
  }
  const rows = extractRows(extract);
  const matrix = prepareMatrix(kstep.preparation, rows);
  const k = kstep.selection.chosen_k;
  const fit = trainKMeans(matrix, rows.length, kstep.preparation.features.length, {
    k,
    seed: deriveSeed(settings.seed, 1_000 + k),
    nInit: settings.nInit,
    // As in bench:segment's job: the restarts run on a tenth of the sample (500 to 2,000 rows).
    restartRows: defaultRestartRows(rows.length),
  });
  const fresh: Trained = trainedRecord(fit, fit.runs.length + kstep.fit.restarts);
  const best = fresh.inertia <= kstep.fit.inertia ? fresh : { ...kstep.fit, restarts: fresh.restarts };
  await ctx.writeStep(version, 'trained', best);
  log.info(
    { k, inertia: best.inertia, restarts: best.restarts, restartsOnHelperThread: fit.restartsOnHelper, converged: best.converged },
    'model trained',
  );
  return { version, k, inertia: best.inertia, reused: false };
}
