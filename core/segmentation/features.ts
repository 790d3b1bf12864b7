/** The feature set segmentation trains on: the default, or SEGFLOW_SEGMENT_FEATURES. */
import { FeatureSpecListSchema, type FeatureSpec } from './prepare.js';

/**
 * Columns of marts.customer_features, chosen so the demo personas separate (ARI >= 0.9 on their
 * features, test/integration/segmentation.test.ts). Money and counts are log-scaled.
 * Override with SEGFLOW_SEGMENT_FEATURES (same JSON shape).
 */
export const DEFAULT_SEGMENT_FEATURES: FeatureSpec[] = [
  { name: 'recency_days', weight: 1, role: 'recency' },
  { name: 'frequency', weight: 1, log: true, role: 'frequency' },
  { name: 'monetary', weight: 1, log: true, role: 'monetary' },
  { name: 'sessions_per_week', weight: 1, log: true, role: 'browse' },
  { name: 'pages_per_session', weight: 1, log: true, role: 'browse' },
  { name: 'avg_time_on_page_ms', weight: 1, log: true },
  { name: 'cart_adds', weight: 0.5, log: true, role: 'cart' },
  { name: 'email_open_rate', weight: 1, role: 'email' },
  { name: 'email_ctr', weight: 1, role: 'email' },
  { name: 'app_sessions', weight: 1, log: true, role: 'app' },
];

/** Thrown when SEGFLOW_SEGMENT_FEATURES is JSON but not a feature list; another attempt cannot fix it. */
export class SegmentFeaturesError extends Error {
  override readonly name = 'SegmentFeaturesError';
}

/** The configured features (`config.segmentation.featuresJson`, validated as JSON when the configuration was loaded). */
export function segmentFeatures(featuresJson: string | undefined): FeatureSpec[] {
  if (featuresJson === undefined) return DEFAULT_SEGMENT_FEATURES;
  const parsed = FeatureSpecListSchema.safeParse(JSON.parse(featuresJson));
  if (!parsed.success) {
    throw new SegmentFeaturesError(
      `SEGFLOW_SEGMENT_FEATURES is not a valid feature list: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}
