/**
 * The nightly_segmentation DAG's activities (dags/nightly-segmentation.ts), one file per task.
 *
 * Each task first looks for its own output under runs/<version>/ (stores/model-registry.ts) and
 * returns it when present, so a retried or rerun task repeats nothing; BigQuery writes are
 * delete-then-insert by version (the emulator rejects repeated job ids, so idempotency never
 * rests on those). Customer rows never leave BigQuery except the training sample.
 */
import type { DagTaskInput } from '../../core/dag-task.js';
import { assignAll } from './assign-all.js';
import { chooseK } from './choose-k.js';
import { createSegmentationContext, type SegmentationDeps } from './context.js';
import { extract } from './extract.js';
import { label } from './label.js';
import { promote } from './promote.js';
import { register } from './register.js';
import { stability } from './stability.js';
import { train } from './train.js';

export type { SegmentationDeps } from './context.js';

/** Activity names are the ones dags/nightly-segmentation.ts (SEGMENTATION_ACTIVITY) looks up. */
export function createSegmentationActivities(deps: SegmentationDeps) {
  const ctx = createSegmentationContext(deps);
  return {
    segmentationExtract: (input: DagTaskInput) => extract(ctx, input),
    segmentationChooseK: (input: DagTaskInput) => chooseK(ctx, input),
    segmentationTrain: (input: DagTaskInput) => train(ctx, input),
    segmentationLabel: (input: DagTaskInput) => label(ctx, input),
    segmentationRegister: (input: DagTaskInput) => register(ctx, input),
    segmentationAssignAll: (input: DagTaskInput) => assignAll(ctx, input),
    segmentationStability: (input: DagTaskInput) => stability(ctx, input),
    segmentationPromote: (input: DagTaskInput) => promote(ctx, input),
  };
}

export type SegmentationActivities = ReturnType<typeof createSegmentationActivities>;
