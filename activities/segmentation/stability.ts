import { alertDedupKey, type Alert } from '../../core/alerts.js';
import { NIGHTLY_SEGMENTATION_DAG } from '../../core/dag-ids.js';
import type { DagTaskInput } from '../../core/dag-task.js';
import {
  checkStability,
  decidePromotion,
  stabilityFigures,
  type ContingencyCell,
  type PromotionDecision,
  type StabilityBreach,
  type StabilityFigures,
} from '../../core/segmentation/index.js';
import { SEGMENT_STABILITY_SCHEMA, StabilityStepSchema, loadCurrentModel, type StabilityStep } from '../../stores/model-registry.js';
import { sameFeatures, type SegmentationContext } from './context.js';

/** Compares the candidate with the current model, records the figures, alerts beyond thresholds. */
export async function stability(ctx: SegmentationContext, input: DagTaskInput) {
  const { query, table, settings } = ctx;
  const version = ctx.versionOf(input);
  const log = ctx.taskLog(input, version);
  const done = await ctx.readStep(version, 'stability', StabilityStepSchema);
  if (done) return { ...(done as StabilityStep), reused: true };
  const candidate = await ctx.candidateModel(version);
  const current = await loadCurrentModel(ctx.storage, ctx.bucket);
  let step: StabilityStep;
  if (current === null || current.version === version) {
    step = {
      version,
      previousVersion: null,
      figures: null,
      breaches: [],
      decision: { promote: true, alert: false, reason: 'no current model to compare with' },
      decisionName: 'promote',
      alerted: false,
    };
  } else {
    let figures: StabilityFigures | null = null;
    let breaches: StabilityBreach[];
    if (sameFeatures(current, candidate)) {
      // Customers in both assignments, by (current id, candidate id): one GROUP BY, nothing leaves BigQuery.
      const cells = await query(
        `SELECT o.segment_id AS current_id, n.segment_id AS candidate_id, COUNT(*) AS customers
         FROM ${table('customer_segments')} AS n
         JOIN ${table('customer_segments')} AS o ON o.customer_id = n.customer_id
         WHERE n.model_version = @candidate AND o.model_version = @current
         GROUP BY current_id, candidate_id`,
        { candidate: version, current: current.version },
      );
      const contingency: ContingencyCell[] = cells.map((c) => ({
        current_id: Number(c.current_id),
        candidate_id: Number(c.candidate_id),
        customers: Number(c.customers),
      }));
      figures = stabilityFigures(current, candidate, contingency);
      breaches = checkStability(figures, settings.thresholds);
    } else {
      breaches = [
        {
          metric: 'segments',
          value: 1,
          threshold: 0,
          message: `the feature set changed since ${current.version}; segments cannot be matched`,
        },
      ];
    }
    const decision: PromotionDecision = decidePromotion(breaches, settings.promotionPolicy);
    step = {
      version,
      previousVersion: current.version,
      figures,
      breaches,
      decision,
      decisionName: !decision.promote ? 'hold' : decision.alert ? 'promote_with_alert' : 'promote',
      alerted: false,
    };
  }

  await ctx.ensureTable('segment_stability', SEGMENT_STABILITY_SCHEMA);
  await query(`DELETE FROM ${table('segment_stability')} WHERE model_version = @v`, { v: version });
  const f = step.figures;
  await query(
    `INSERT INTO ${table('segment_stability')} (model_version, previous_version, changed_share, ari, max_centroid_drift, size_shifts, breaches, decision, computed_at)
     VALUES (@v, ${step.previousVersion === null ? 'NULL' : '@prev'}, ${f ? 'CAST(@changed AS FLOAT64)' : 'NULL'}, ${f ? 'CAST(@ari AS FLOAT64)' : 'NULL'},
             ${f ? 'CAST(@drift AS FLOAT64)' : 'NULL'}, @shifts, @breaches, @decision, @at)`,
    {
      v: version,
      ...(step.previousVersion === null ? {} : { prev: step.previousVersion }),
      ...(f ? { changed: String(f.changed_share), ari: String(f.adjusted_rand_index), drift: String(f.max_centroid_drift) } : {}),
      shifts: JSON.stringify(f?.size_shifts ?? []),
      breaches: JSON.stringify(step.breaches),
      decision: step.decisionName,
      at: new Date(),
    },
  );

  if (step.decision.alert) {
    const alert: Alert = {
      kind: 'data_anomaly',
      severity: 'warning',
      summary: `Segments of ${version} moved beyond thresholds against ${step.previousVersion}: ${step.decisionName === 'hold' ? 'held, the current model keeps serving' : 'promoted with this alert'}`,
      message: step.breaches.map((b) => `- ${b.message}`).join('\n'),
      dedupKey: alertDedupKey('data_anomaly', NIGHTLY_SEGMENTATION_DAG, 'stability', version),
      occurredAt: new Date().toISOString(),
      dagId: input.dagId,
      taskIds: [input.taskId],
      interval: input.interval,
      links: [],
    };
    await ctx.raiseAlert(alert);
    step = { ...step, alerted: true };
  }
  await ctx.writeStep(version, 'stability', step);
  log.info(
    { previous: step.previousVersion, decision: step.decisionName, breaches: step.breaches.length, figures: step.figures },
    'stability measured',
  );
  return { ...step, reused: false };
}
