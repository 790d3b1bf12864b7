import type { DagTaskInput } from '../../core/dag-task.js';
import { SEGMENT_MODELS_SCHEMA, StabilityStepSchema, writeCurrentPointer } from '../../stores/model-registry.js';
import type { SegmentationContext } from './context.js';

/** By the stability decision: switch current.json to this version in one write, then mark the registry. */
export async function promote(ctx: SegmentationContext, input: DagTaskInput) {
  const { query, table } = ctx;
  const version = ctx.versionOf(input);
  const log = ctx.taskLog(input, version);
  const step = await ctx.requireStep(version, 'stability', StabilityStepSchema, 'stability');
  if (!step.decision.promote) {
    log.warn({ reason: step.decision.reason }, 'model held; the current model keeps serving');
    return { version, promoted: false, reason: step.decision.reason };
  }
  const { uri } = await writeCurrentPointer(ctx.storage, ctx.bucket, version);
  await ctx.ensureTable('segment_models', SEGMENT_MODELS_SCHEMA);
  await query(
    `UPDATE ${table('segment_models')} SET is_current = (version = @v), promoted_at = IF(version = @v AND promoted_at IS NULL, @at, promoted_at) WHERE TRUE`,
    { v: version, at: new Date() },
  );
  log.info({ uri }, 'model promoted');
  return { version, promoted: true, reason: step.decision.reason };
}
