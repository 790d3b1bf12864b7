/** The feature set segmentation trains on unless the segmentation configuration (core/config.ts) names another. */
import { INCOME_BANDS } from '../events.js';
import type { FeatureSpec } from './prepare.js';

/**
 * Behavioural columns of marts.customer_features, chosen so the demo personas separate (ARI >= 0.9
 * on their features, test/integration/segmentation.test.ts). Money and counts are log-scaled.
 */
export const BEHAVIOUR_FEATURES: FeatureSpec[] = [
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

/**
 * Demographic columns of marts.customer_features (latest profile_update), weighted so behaviour
 * leads: each pulls at most 0.4 as hard as one behavioural feature, and together they hold about a
 * twentieth of the squared distance a customer can have (docs/segmentation.md#features).
 */
export const DEMOGRAPHIC_FEATURES: FeatureSpec[] = [
  { name: 'age', weight: 0.4 },
  { name: 'gender', kind: 'categorical', weight: 0.2, top: 3 },
  { name: 'country', kind: 'categorical', weight: 0.25, top: 5 },
  { name: 'income_band', kind: 'ordinal', weight: 0.4, levels: [...INCOME_BANDS] },
];

/** What segmentation clusters on unless the configuration names other features. */
export const DEFAULT_SEGMENT_FEATURES: FeatureSpec[] = [...BEHAVIOUR_FEATURES, ...DEMOGRAPHIC_FEATURES];
