import { ApplicationFailure } from '@temporalio/common';
import type { DagTaskInput } from '../../core/dag-task.js';
import { KSelectionError, describeSegments, fitPreparation, prepareMatrix, selectK, wardTrainer } from '../../core/segmentation/index.js';
import { ExtractSchema, KStepSchema, type KStep } from '../../stores/model-registry.js';
import { extractRows, trainedRecord, type SegmentationContext } from './context.js';
import { heartbeat } from '../heartbeat.js';

/** Fits the preparation and chooses k over the configured range (every candidate recorded). */
export async function chooseK(ctx: SegmentationContext, input: DagTaskInput) {
  const { settings } = ctx;
  const version = ctx.versionOf(input);
  const log = ctx.taskLog(input, version);
  const done = await ctx.readStep(version, 'k_selection', KStepSchema);
  if (done) return { version, chosenK: done.selection.chosen_k, reused: true };
  const extract = await ctx.requireStep(version, 'extract', ExtractSchema, 'extract');
  const rows = extractRows(extract);
  const preparation = fitPreparation(rows, ctx.features());
  const dim = preparation.features.length;
  const matrix = prepareMatrix(preparation, rows);
  heartbeat({ stage: 'choose_k', rows: rows.length });
  let result;
  try {
    result = selectK(matrix, rows.length, dim, {
      seed: settings.seed,
      kMin: settings.kMin,
      kMax: settings.kMax,
      minSegmentShare: settings.minSegmentShare,
      silhouetteSampleSize: settings.silhouetteSampleSize,
      tolerance: settings.kTolerance,
      stabilityResamples: settings.stabilityResamples,
      stabilitySampleSize: settings.stabilitySampleSize,
      minStability: settings.minKStability,
      labelSegments: (centroids, sizes) => describeSegments(preparation, centroids, sizes).map((s) => s.label),
      nInit: settings.nInit,
      ...(settings.algorithm === 'hierarchical'
        ? { trainer: wardTrainer({ seed: settings.seed, sampleRows: settings.hierarchicalSampleSize }) }
        : {}),
    });
  } catch (err) {
    if (err instanceof KSelectionError) throw ApplicationFailure.nonRetryable(err.message, 'KSelectionFailed', err.candidates);
    throw err;
  }
  const { selection, fit } = result;
  const step: KStep = {
    algorithm: settings.algorithm,
    preparation,
    selection,
    fit: trainedRecord(fit, fit.runs.length),
  };
  await ctx.writeStep(version, 'k_selection', step);
  log.info(
    {
      algorithm: settings.algorithm,
      chosenK: selection.chosen_k,
      elbowK: selection.elbow_k,
      chosenBy: selection.chosen_by,
      candidates: selection.candidates,
    },
    'k chosen',
  );
  return { version, chosenK: selection.chosen_k, elbowK: selection.elbow_k, chosenBy: selection.chosen_by, reused: false };
}
