import type { DagTaskInput } from '../../core/dag-task.js';
import {
  loadCurrentPointer,
  readPromotions,
  recordPromotion,
  StabilityStepSchema,
  writeCurrentPointer,
} from '../../stores/model-registry.js';
import { whileHeartbeating } from '../heartbeat.js';
import type { SegmentationContext } from './context.js';

/**
 * By the stability decision: switch current.json to this version in one write, then record the
 * switch (marts.segment_promotions, is_current in marts.segment_models). A held model stays until
 * an operator releases it with `ops models promote`.
 */
export async function promote(ctx: SegmentationContext, input: DagTaskInput) {
  const version = ctx.versionOf(input);
  const log = ctx.taskLog(input, version);
  const step = await ctx.requireStep(version, 'stability', StabilityStepSchema, 'stability');
  if (!step.decision.promote) {
    log.warn({ reason: step.decision.reason }, 'model held; the current model keeps serving');
    return { version, promoted: false, reason: step.decision.reason };
  }
  const previous = await loadCurrentPointer(ctx.storage, ctx.bucket);
  const { uri } = await writeCurrentPointer(ctx.storage, ctx.bucket, version);
  // A retry after the pointer write finds this version current already: the record names the one before.
  const previousVersion = previous === null || previous.version === version ? (step.previousVersion ?? null) : previous.version;
  // Recorded once: a retried task finds its own record and does not add another.
  const [latest] = await whileHeartbeating(() => readPromotions(ctx, { limit: 1 }), 'query');
  if (latest?.model_version === version) {
    log.info({ uri }, 'model promoted (recorded by an earlier attempt)');
    return { version, promoted: true, reason: step.decision.reason };
  }
  await whileHeartbeating(
    () =>
      recordPromotion(ctx, {
        model_version: version,
        previous_version: previousVersion === version ? null : previousVersion,
        action: 'nightly',
        promoted_by: input.dagId,
        note: step.decision.reason,
        promoted_at: new Date().toISOString(),
      }),
    'query',
  );
  log.info({ uri }, 'model promoted');
  return { version, promoted: true, reason: step.decision.reason };
}
