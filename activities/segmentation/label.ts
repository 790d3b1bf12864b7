import { z } from 'zod';
import type { DagTaskInput } from '../../core/dag-task.js';
import {
  buildHierarchy,
  cohesionFigures,
  describeSegments,
  parseSegmentModel,
  prepareMatrix,
  relabelFromCurrent,
} from '../../core/segmentation/index.js';
import { ExtractSchema, KStepSchema, TrainedSchema, loadCurrentModel, type LabelStep } from '../../stores/model-registry.js';
import { extractRows, sameFeatures, type SegmentationContext } from './context.js';

/** Labels the segments and carries ids and labels over from the current model (Hungarian matching). */
export async function label(ctx: SegmentationContext, input: DagTaskInput) {
  const version = ctx.versionOf(input);
  const log = ctx.taskLog(input, version);
  const done = await ctx.readStep(version, 'model', z.unknown());
  if (done !== null) {
    const model = parseSegmentModel(done);
    return { version, k: model.centroids.length, labels: model.segments.map((s) => s.label), reused: true };
  }
  const extract = await ctx.requireStep(version, 'extract', ExtractSchema, 'extract');
  const kstep = await ctx.requireStep(version, 'k_selection', KStepSchema, 'choose_k');
  const trained = await ctx.requireStep(version, 'trained', TrainedSchema, 'train');
  const rows = extractRows(extract);
  const cohesion = cohesionFigures(
    prepareMatrix(kstep.preparation, rows),
    rows.length,
    kstep.preparation.features.length,
    trained.centroids,
    {
      seed: ctx.settings.seed,
      silhouetteSampleSize: ctx.settings.silhouetteSampleSize,
    },
  );
  const candidate = parseSegmentModel({
    version,
    created_at: new Date().toISOString(),
    features: ctx.features(),
    preparation: kstep.preparation,
    centroids: trained.centroids,
    segments: describeSegments(kstep.preparation, trained.centroids, trained.sizes),
    k_selection: kstep.selection,
    metrics: {
      inertia: trained.inertia,
      silhouette: kstep.selection.candidates.find((c) => c.k === trained.k)?.silhouette ?? 0,
    },
    cohesion,
    training: {
      algorithm: kstep.algorithm ?? 'kmeans',
      sample_size: extract.ids.length,
      seed: trained.seed,
      n_init: trained.restarts,
      iterations: trained.iterations,
      converged: trained.converged,
    },
  });
  const current = await loadCurrentModel(ctx.storage, ctx.bucket);
  let model = candidate;
  let labels: LabelStep = { relabelledFrom: null, matches: [] };
  const comparable = current !== null && sameFeatures(current, candidate);
  if (current && current.version !== version && comparable) {
    const relabelled = relabelFromCurrent(current, candidate);
    model = relabelled.model;
    labels = { relabelledFrom: current.version, matches: relabelled.matches };
  } else if (current && !comparable) {
    log.warn({ current: current.version }, 'the current model uses other features; segments start afresh (new ids)');
  }
  // After relabelling: parents take their ids from the segment ids the model keeps.
  model = parseSegmentModel({ ...model, hierarchy: buildHierarchy(model, ctx.settings.parentSegments) });
  await ctx.writeStep(version, 'labels', labels);
  await ctx.writeStep(version, 'model', model);
  log.info(
    { segments: model.segments.map((s) => ({ id: s.id, label: s.label, share: s.share })), relabelledFrom: labels.relabelledFrom },
    'segments labelled',
  );
  log.info(
    { parents: model.hierarchy?.parents.map((p) => ({ id: p.id, label: p.label, members: p.members, share: p.share })) },
    'parent segments chosen',
  );
  return { version, k: model.centroids.length, labels: model.segments.map((s) => s.label), reused: false };
}
