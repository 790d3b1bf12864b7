import type { DagTaskInput } from '../../core/dag-task.js';
import { SEGMENT_MODELS_SCHEMA, writeModel } from '../../stores/model-registry.js';
import type { SegmentationContext } from './context.js';

/** Writes the artifact to models/segmentation/<version>.json and registers it (not current yet). */
export async function register(ctx: SegmentationContext, input: DagTaskInput) {
  const { query, table } = ctx;
  const version = ctx.versionOf(input);
  const model = await ctx.candidateModel(version);
  const uri = await writeModel(ctx.storage, ctx.bucket, version, model);
  await ctx.ensureTable('segment_models', SEGMENT_MODELS_SCHEMA);
  const [row] = await query(`SELECT COUNT(*) AS n FROM ${table('segment_models')} WHERE version = @v`, { v: version });
  if (Number(row?.n ?? 0) === 0) {
    const metrics = JSON.stringify({
      ...model.metrics,
      chosen_k: model.k_selection.chosen_k,
      elbow_k: model.k_selection.elbow_k,
      chosen_by: model.k_selection.chosen_by,
      cohesion: model.cohesion
        ? { davies_bouldin: model.cohesion.davies_bouldin, calinski_harabasz: model.cohesion.calinski_harabasz }
        : null,
      training: model.training,
    });
    await query(
      `INSERT INTO ${table('segment_models')} (version, created_at, uri, k, is_current, metrics, promoted_at) VALUES (@v, @created, @uri, CAST(@k AS INT64), FALSE, @metrics, NULL)`,
      { v: version, created: new Date(model.created_at), uri, k: String(model.centroids.length), metrics },
    );
  }
  ctx.taskLog(input, version).info({ uri }, 'model registered');
  return { version, uri };
}
