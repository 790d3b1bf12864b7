/**
 * The cohesion gate before promotion: minimums on the figures of cohesion.ts, and the one
 * decision (with at most one alert) that combines them with the stability thresholds.
 */
import { z } from 'zod';
import type { Cohesion } from './cohesion.js';
import { decidePromotion } from './stability.js';
import type { PromotionDecision, PromotionPolicy, StabilityBreach } from './stability.js';
import { parseOrThrow } from './validate.js';

export const CohesionThresholdsSchema = z.object({
  /** A segment whose mean silhouette is below this holds the model (0: its rows sit closer to another segment). */
  minSegmentSilhouette: z.number().min(-1).max(1).default(0),
  /** A model whose mean silhouette is below this holds the model. */
  minSilhouette: z.number().min(-1).max(1).default(0.2),
});
export type CohesionThresholds = z.output<typeof CohesionThresholdsSchema>;

/** Shaped like a stability breach, so both are recorded and alerted on together. */
export interface CohesionBreach {
  metric: 'segment_silhouette' | 'model_silhouette';
  value: number;
  threshold: number;
  message: string;
}

/** The cohesion gates a model fails; `labels` name the segments (model order) in the messages. */
export function checkCohesion(
  cohesion: Cohesion,
  labels: readonly string[],
  thresholdsInput: z.input<typeof CohesionThresholdsSchema> = {},
): CohesionBreach[] {
  const t = parseOrThrow(CohesionThresholdsSchema, thresholdsInput, 'cohesion thresholds');
  const breaches: CohesionBreach[] = [];
  if (cohesion.silhouette < t.minSilhouette) {
    breaches.push({
      metric: 'model_silhouette',
      value: cohesion.silhouette,
      threshold: t.minSilhouette,
      message: `cohesion gate model_silhouette: mean silhouette ${cohesion.silhouette.toFixed(3)} is below the floor ${t.minSilhouette}`,
    });
  }
  const weak = cohesion.segments.filter((s) => s.silhouette !== null && s.silhouette < t.minSegmentSilhouette);
  if (weak.length > 0) {
    const worst = weak.reduce((a, b) => (b.silhouette! < a.silhouette! ? b : a));
    const name = (i: number) => `segment ${i} "${labels[i] ?? i}"`;
    breaches.push({
      metric: 'segment_silhouette',
      value: worst.silhouette!,
      threshold: t.minSegmentSilhouette,
      message:
        `cohesion gate segment_silhouette: ${name(worst.index)} has mean silhouette ${worst.silhouette!.toFixed(3)}, below ${t.minSegmentSilhouette}` +
        (weak.length > 1
          ? ` (and ${weak.length - 1} more: ${weak
              .filter((s) => s !== worst)
              .map((s) => name(s.index))
              .join(', ')})`
          : '') +
        (worst.nearest_index !== null ? `; its rows sit nearer ${name(worst.nearest_index)}` : ''),
    });
  }
  return breaches;
}

export interface ReleaseDecision {
  decision: PromotionDecision;
  decisionName: 'promote' | 'promote_with_alert' | 'hold';
  /** Every breach, cohesion first: what the one alert lists. */
  breaches: (CohesionBreach | StabilityBreach)[];
  /** The alert's summary line, when there is an alert. */
  summary: string | null;
}

/**
 * Whether a candidate is promoted, from its cohesion and (when there is a current model) its
 * stability. A cohesion breach holds the model whatever the promotion policy says: a model whose
 * segments overlap is not one to serve even with an alert. Stability breaches follow the policy.
 * At most one alert, listing every breach.
 */
export function decideRelease(
  version: string,
  previousVersion: string | null,
  cohesionBreaches: readonly CohesionBreach[],
  stabilityBreaches: readonly StabilityBreach[],
  policy: PromotionPolicy,
): ReleaseDecision {
  const breaches = [...cohesionBreaches, ...stabilityBreaches];
  if (cohesionBreaches.length > 0) {
    const decision = { promote: false, alert: true, reason: `held: ${breaches.map((b) => b.message).join('; ')}` };
    const gates = cohesionBreaches.map((b) => b.metric).join(', ');
    return {
      decision,
      decisionName: 'hold',
      breaches,
      summary: `Segments of ${version} fail the cohesion gate (${gates}): held, the current model keeps serving`,
    };
  }
  const decision =
    previousVersion === null && stabilityBreaches.length === 0
      ? { promote: true, alert: false, reason: 'no current model to compare with' }
      : decidePromotion(stabilityBreaches, policy);
  const decisionName = !decision.promote ? 'hold' : decision.alert ? 'promote_with_alert' : 'promote';
  return {
    decision,
    decisionName,
    breaches,
    summary: decision.alert
      ? `Segments of ${version} moved beyond thresholds against ${previousVersion}: ${decisionName === 'hold' ? 'held, the current model keeps serving' : 'promoted with this alert'}`
      : null,
  };
}
